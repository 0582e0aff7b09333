"""The hub's pages in a real headless browser (Debian's chromium driven by Playwright), and
the HTTP behaviour they rely on (HEAD wherever GET works, the 404 page, file downloads).

One hub (``tfhub serve``) and one browser for the whole module. Screenshots of every page
(catalog, search results, model page, 404) at 1280 and 390 px, light and dark, go to
``$TFHUB_SCREENSHOTS`` if set, else to a pytest temporary directory (printed by the test).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from playwright import sync_api

from tests.helpers import python_env
from tests.helpers.hub import DOCS, HubServer
from tfhub import protocol
from tfhub.server.client import publish_to_root

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

TEXT_DOCS = """# Sentence encoder
Turns sentences into 8 numbers each.

<!-- task: text-embedding -->
<!-- license: apache-2.0 -->
<!-- language: en -->

## Inputs

| name | dtype | shape |
|------|-------|-------|
| sentences | string | [batch] |

```python
embed(["hello"])
```

[a link](https://example.org/docs) and [a trap](javascript:alert('link'))
"""
EVIL = "<img src=x onerror=alert('xss')>"
EVIL_DOCS = f"""# {EVIL}
{EVIL} <script>alert('script')</script>

<!-- license: {EVIL} -->
<!-- module-type: {EVIL} -->

![pixel](https://evil.example/pixel.png)
<svg onload=alert('svg')></svg>
"""
PAGES = {
    "catalog": "/",
    "search": "/?q=sentences",
    "model": "/google/sentence-encoder/1",
    "404": "/nobody/nothing/1",
}


@pytest.fixture(scope="module")
def hub(tmp_path_factory, models):
    # Published up front, straight to the root (publishing is tested elsewhere): the server
    # only serves, and needs no validator.
    store = str(tmp_path_factory.mktemp("hub") / "store")
    publish_to_root(models["text"], "google/sentence-encoder/1", root=store, docs=TEXT_DOCS)
    publish_to_root(models["mul"], "test/mul/1", root=store, docs=DOCS)
    publish_to_root(models["mul"], "test/mul/2", root=store, docs=EVIL_DOCS)  # latest: hostile
    server = HubServer(store)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser():
    # A missing browser fails these tests (never skips them): `make test` installs it.
    assert os.path.exists(CHROMIUM), f"no chromium at {CHROMIUM}: run `make test` (installs it)"
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )  # fmt: skip
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    where = os.environ.get("TFHUB_SCREENSHOTS")
    path = Path(where) if where else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


# The colours of an element and of the first ancestor with an opaque background.
_COLOURS = """sel => Array.from(document.querySelectorAll(sel)).slice(0, 3).map(el => {
  let bg = el, c = getComputedStyle(el).backgroundColor;
  while (bg && (c === 'rgba(0, 0, 0, 0)' || c === 'transparent')) {
    bg = bg.parentElement; c = bg ? getComputedStyle(bg).backgroundColor : 'rgb(255, 255, 255)';
  }
  return [getComputedStyle(el).color, c];
})"""


def _luminance(css: str) -> float:
    r, g, b = (int(v) / 255 for v in re.findall(r"[\d.]+", css)[:3])
    lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in (r, g, b)]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def _contrast(fg: str, bg: str) -> float:
    hi, lo = sorted((_luminance(fg), _luminance(bg)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_screenshots_layout_and_contrast(hub, browser, shots):
    written = []
    for scheme in ("light", "dark"):
        for width in (1280, 390):
            context = browser.new_context(
                viewport={"width": width, "height": 900}, color_scheme=scheme
            )
            page = context.new_page()
            try:
                for name, path in PAGES.items():
                    response = page.goto(hub.url + path)
                    assert response.status == (404 if name == "404" else 200), path
                    scroll, client = page.evaluate(
                        "[document.documentElement.scrollWidth,"
                        " document.documentElement.clientWidth]"
                    )
                    assert scroll <= client, f"{path} scrolls sideways at {width}px ({scheme})"
                    for selector in ("body", "main a", "header.top a", ".chip", ".muted, .count",
                                     "pre code", "h1"):  # fmt: skip
                        for fg, bg in page.evaluate(_COLOURS, selector):
                            ratio = _contrast(fg, bg)
                            assert ratio >= 4.5, f"{selector} on {path} ({scheme}): {ratio:.2f}"
                    body_bg = page.evaluate("getComputedStyle(document.body).backgroundColor")
                    dark = _luminance(body_bg) < 0.05
                    assert dark == (scheme == "dark"), (path, scheme, body_bg)
                    file = shots / f"{name}-{width}-{scheme}.png"
                    page.screenshot(path=str(file), full_page=True)
                    written.append(file)
            finally:
                context.close()
    assert len(written) == 16 and all(f.stat().st_size > 1000 for f in written)
    print(f"screenshots in {shots}")


def test_catalog_search_facets_sort_and_model_page(hub, browser):
    context = browser.new_context(permissions=["clipboard-read", "clipboard-write"])
    page = context.new_page()
    try:
        page.goto(hub.url + "/")
        assert page.locator(".card.model").count() == 2
        mul = page.locator(".card.model", has_text="test/mul")
        assert "v2 (latest) · 2 versions" in mul.inner_text()
        page.fill("input[name=q]", "sentences")
        page.click("button[type=submit]")
        assert page.locator(".card.model h3").all_inner_texts() == ["google/sentence-encoder"]
        assert page.locator("h1").inner_text() == "Results for “sentences”"
        page.goto(hub.url + "/")
        page.click("a[data-facet=license][data-value='apache-2.0']")
        assert page.locator(".card.model h3").all_inner_texts() == ["google/sentence-encoder"]
        assert page.locator("a.on[data-value='apache-2.0']").count() == 1
        page.click("a[data-facet=license][data-value='apache-2.0']")  # off again
        assert page.locator(".card.model").count() == 2
        page.select_option("select[name=sort]", "name")
        page.click("button[type=submit]")
        assert page.locator(".card.model h3").all_inner_texts() == [
            "google/sentence-encoder", "test/mul"]  # fmt: skip
        assert "sort=name" in page.url
        page.click("text=google/sentence-encoder")
        page.wait_for_selector("table.signatures")
        assert page.locator("h1").inner_text() == "Sentence encoder"
        assert page.locator(".versions li").all_inner_texts() == ["v1 (this page) latest"]
        docs = page.locator(".docs")
        assert docs.locator("table td").first.inner_text() == "sentences"
        assert docs.locator("pre code.language-python").inner_text().strip() == 'embed(["hello"])'
        assert docs.locator("a", has_text="a trap").count() == 0  # javascript: is no link
        files = page.locator("table.files tr")
        assert "saved_model.pb" in files.all_inner_texts()[1] or "saved_model.pb" in (
            page.locator("table.files").inner_text()
        )
        with page.expect_download() as download:
            page.locator("table.files tr", has_text="saved_model.pb").locator("a").click()
        assert download.value.suggested_filename == "saved_model.pb"
        data = Path(download.value.path()).read_bytes()
        record = requests.get(f"{hub.url}/api/models/google/sentence-encoder/1", timeout=30)
        (entry,) = [f for f in record.json()["blobs"]["files"] if f["path"] == "saved_model.pb"]
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]
        page.click("#copy")
        # A locator assertion, not wait_for_function: polling a string predicate makes
        # Playwright eval it in the page, which the page's CSP rightly refuses.
        sync_api.expect(page.locator("#copy")).to_have_text("Copied")
        copied = page.evaluate("navigator.clipboard.readText()")
        assert copied == page.locator("#snippet").inner_text()
        assert f'hub.KerasLayer("{hub.url}/google/sentence-encoder")' in copied  # as visited
        page.goto(hub.url + "/test/mul/1")
        assert page.locator(".versions li").all_inner_texts() == [
            "v2 latest", "v1 (this page)"]  # fmt: skip
        assert "latest is v2" in page.locator(".chips").inner_text()
    finally:
        context.close()


def test_usage_snippet_runs_against_the_hub(hub, browser):
    page = browser.new_page()
    try:
        page.goto(hub.url + "/google/sentence-encoder/1")
        code = page.locator("#snippet").inner_text()
        expected = page.locator(".output-shape code").first.inner_text()
    finally:
        page.close()
    assert "import tfhub as hub" in code and "tf.constant([" in code
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=python_env({"TF_CPP_MIN_LOG_LEVEL": "3"}),
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert expected == "(2, 8)" and out.stdout.strip().splitlines()[-1] == expected


def test_hostile_docs_and_metadata_do_not_execute(hub, browser):
    page = browser.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    try:
        for path in ("/test/mul/2", "/", "/?license=" + EVIL, "/?q=" + EVIL):
            response = page.goto(hub.url + path)
            assert response.status == 200
            html = response.text()
            assert "<img" not in html and "<svg" not in html
            assert page.locator("script").count() == (1 if path.startswith("/test") else 0)
        page.goto(hub.url + "/test/mul/2")
        assert page.locator("h1").inner_text() == EVIL  # shown as text
        assert page.locator(".docs a", has_text="[image: pixel]").count() == 1
    finally:
        page.close()
    assert dialogs == []
    assert [u for u in requested if not u.startswith(hub.url)] == []  # no remote fetch


def test_not_found_is_a_page_for_browsers_and_text_for_clients(hub, browser):
    page = browser.new_page()
    try:
        response = page.goto(hub.url + "/nobody/nothing/1")
        assert response.status == 404
        assert page.locator("h1").inner_text() == "Page not found"
        assert page.locator(".message").inner_text() == "No model at /nobody/nothing/1."
        page.fill("input[name=q]", "mul")
        page.click("button[type=submit]")
        assert page.locator(".card.model h3").all_inner_texts() == ["test/mul"]
    finally:
        page.close()
    plain = requests.get(hub.url + "/nobody/nothing/1", timeout=30)
    assert plain.status_code == 404 and plain.headers["content-type"].startswith("text/plain")


def _get_routes() -> set[str]:
    from tfhub.server.app import create_app

    app = create_app(os.devnull + "-unused-root", public_url="http://x")
    return {r.path for r in app.routes if "GET" in (getattr(r, "methods", None) or ())}


def test_head_wherever_get_works(hub, tmp_path):
    record = requests.get(f"{hub.url}/api/models/test/mul/1", timeout=30).json()
    blob = record["blobs"]["files"][0]["sha256"]
    manifest = {"Accept": protocol.FILES_MEDIA_TYPE}
    compressed = f"?{protocol.FORMAT_PARAM}=compressed"
    urls = {
        "/": ["/", "/?q=mul&sort=name&page=1", "/?license=mit"],
        "/healthz": ["/healthz"],
        "/openapi.json": ["/openapi.json"],
        "/api/models": ["/api/models", "/api/models?q=mul"],
        "/api/models/{path:path}": ["/api/models/test/mul", "/api/models/test/mul/1",
                                    "/api/models/no/such/1"],
        "/api/blobs/{sha256}": [f"/api/blobs/{blob}", f"/api/blobs/{blob}?name=a.pb",
                                "/api/blobs/" + "0" * 64],
        "/{path:path}": ["/test/mul", "/test/mul/1", f"/test/mul/1{compressed}",
                         f"/test/mul{compressed}", ("/test/mul/1" + compressed, manifest),
                         "/nobody/nothing/1", ("/nobody/nothing/1", {"Accept": "text/html"})],
    }  # fmt: skip
    assert set(urls) == _get_routes() | {"/openapi.json"}  # a new GET route needs a row here
    for cases in urls.values():
        for case in cases:
            path, headers = case if isinstance(case, tuple) else (case, {})
            got = requests.get(hub.url + path, headers=headers, timeout=30)
            head = requests.head(hub.url + path, headers=headers, timeout=30)
            assert head.status_code == got.status_code, path
            assert head.content == b"", path
            same = {k.lower(): v for k, v in got.headers.items() if k.lower() != "date"}
            assert {k.lower(): v for k, v in head.headers.items() if k.lower() != "date"} == same
            if got.ok:
                assert int(head.headers["content-length"]) == len(got.content), path
    assert "HEAD /test/mul/1?tf-hub-format=compressed 200" in hub.wait_for_log("HEAD /test")
    named = requests.get(f'{hub.url}/api/blobs/{blob}?name=../x";.pb', timeout=30)
    assert named.headers["content-disposition"] == 'attachment; filename="x_.pb"'
