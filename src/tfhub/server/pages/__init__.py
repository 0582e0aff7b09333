"""HTML pages of the hub: the catalog, one page per model version, the 404 page.

* :mod:`.layout`: style (light and dark), the one script, security headers, the frame;
* :mod:`.catalog`: search, facets, sort, cards, pagination;
* :mod:`.model`: the model page; :mod:`.usage`: its usage examples;
* :mod:`.markdown`: untrusted docs as GitHub-flavoured Markdown.
"""

from tfhub.server.pages.catalog import FACETS, SORTS, CatalogQuery, catalog_page
from tfhub.server.pages.layout import (
    CONTENT_SECURITY_POLICY,
    SECURITY_HEADERS,
    not_found_page,
)
from tfhub.server.pages.model import model_page

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "FACETS",
    "SECURITY_HEADERS",
    "SORTS",
    "CatalogQuery",
    "catalog_page",
    "model_page",
    "not_found_page",
]
