"""The hub's pages in a real headless browser (Debian's chromium driven by Playwright)."""

from __future__ import annotations

import os
import shutil

import pytest
from playwright import sync_api

from tests.helpers.hub import DOCS, HubServer, publish
from tfhub.testing import make_tarball

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="make test installs chromium")


@pytest.fixture()
def hub_with_models(tmp_path, models):
    server = HubServer(str(tmp_path / "store"))
    try:
        assert publish(server.url, "test/mul/1", make_tarball(models["mul"]), docs=DOCS).ok
        docs = "# Module other/dict/1\nAdds and multiplies dicts.\n\n<!-- module-type: other -->\n"
        assert publish(server.url, "other/dict/1", make_tarball(models["dict"]), docs=docs).ok
        yield server
    finally:
        server.stop()


@pytest.fixture()
def page():
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )  # fmt: skip
        try:
            context = browser.new_context(permissions=["clipboard-read", "clipboard-write"])
            yield context.new_page()
        finally:
            browser.close()


def test_catalog_search_filters_and_copy_snippet(hub_with_models, page, tmp_path):
    url = hub_with_models.url
    page.goto(url + "/")
    assert page.locator(".card.model").count() == 2
    page.fill("input[name=q]", "multiplies its")
    page.click("button[type=submit]")
    assert page.locator(".card.model").count() == 1
    assert page.locator(".card.model h3").inner_text() == "test/mul"
    page.fill("input[name=q]", "")
    page.select_option("select[name=publisher]", "other")
    page.click("button[type=submit]")
    assert page.locator(".card.model h3").all_inner_texts() == ["other/dict"]
    page.select_option("select[name=publisher]", "")
    page.select_option("select[name=module_type]", "text-embedding")
    page.click("button[type=submit]")
    assert page.locator(".card.model h3").all_inner_texts() == ["test/mul"]
    page.click("text=test/mul")
    page.wait_for_selector("table.signatures")
    assert "serving_default" in page.locator("table.signatures").inner_text()
    assert page.locator(".fact-license").inner_text() == "mit"
    assert page.locator("h1").inner_text() == "Module test/mul/1"
    page.screenshot(path=str(tmp_path / "model-page.png"), full_page=True)
    page.click("#copy")
    # A locator assertion, not wait_for_function: polling a string predicate makes Playwright
    # eval it in the page, which the page's CSP rightly refuses (no 'unsafe-eval').
    sync_api.expect(page.locator("#copy")).to_have_text("Copied")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == f'hub.KerasLayer("{url}/test/mul")'
