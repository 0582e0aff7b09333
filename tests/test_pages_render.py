"""The pages as HTML (no server, no browser): cards, facets, sort, pagination, usage examples,
downloads, provenance, Markdown docs that cannot be turned against readers."""

from __future__ import annotations

import re
from html import unescape

import pytest

from tfhub.server.pages import CatalogQuery, catalog_page, model_page, not_found_page
from tfhub.server.pages.markdown import render_docs
from tfhub.server.pages.usage import sample_input, usage_examples
from tfhub.server.routes_files import download_name

URL = "http://hub.test/test/enc/1"


def _record(**extra):
    record = {
        "publisher": "test",
        "model": "enc",
        "version": 2,
        "format": "saved_model_2",
        "published_at": "2026-01-02T00:00:00+00:00",
        "archive": {"size": 2048, "sha256": "a" * 64, "key": "k"},
        "info": {
            "size_bytes": 4096,
            "variants": [
                {
                    "tags": ["serve"],
                    "signatures": {
                        "serving_default": {
                            "inputs": {"sentences": {"dtype": "string", "shape": [None],
                                                     "kind": "dense"}},
                            "outputs": {"default": {"dtype": "float32", "shape": [None, 8],
                                                    "kind": "dense"}},
                        }
                    },
                }
            ],
            "call": [
                {
                    "inputs": {"inputs": {"dtype": "string", "shape": [None], "kind": "dense"}},
                    "input_structure": "tensor",
                    "outputs": {"output_0": {"dtype": "float32", "shape": [None, 8],
                                             "kind": "dense"}},
                    "output_structure": "tensor",
                }
            ],
        },
        "blobs": {
            "block_size": 4,
            "files": [
                {"path": "saved_model.pb", "size": 3000, "sha256": "b" * 64, "blocks": []},
                {"path": "variables/variables.index", "size": 12, "sha256": "c" * 64,
                 "blocks": []},
            ],
        },
        "docs": {"title": "Encoder", "description": "Encodes.",
                 "metadata": {"module-type": ["text-embedding"], "license": ["mit"]},
                 "markdown": "Encodes."},
    }  # fmt: skip
    record.update(extra)
    return record


def _text(html: str) -> str:
    return unescape(re.sub(r"<[^>]+>", " ", html))


# ---- Markdown docs ----------------------------------------------------------------------


def test_docs_render_gfm_tables_and_fenced_code():
    html = render_docs("| a | b |\n|---|---|\n| 1 | 2 |\n\n```python\nprint(1)\n```\n~~old~~")
    assert "<table>" in html and "<td>2</td>" in html and "<th>a</th>" in html
    assert "<div class='scroll'><table>" in html  # wide tables scroll in their own box
    assert '<pre><code class="language-python">print(1)\n</code></pre>' in html
    assert "<s>old</s>" in html


@pytest.mark.parametrize(
    "markdown",
    [
        "[x](javascript:alert(1))",
        "[x](JAVASCRIPT:alert(1))",
        "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
        "[x](vbscript:msgbox(1))",
        "[x](file:///etc/passwd)",
        "<a href='javascript:alert(1)'>x</a>",
        "<javascript:alert(1)>",
        "[x][r]\n\n[r]: javascript:alert(1)",
        "![x](javascript:alert(1))",
    ],
)
def test_docs_never_link_to_scripts_or_data(markdown):
    html = render_docs(markdown)
    hrefs = re.findall(r"<a\s[^>]*href=['\"]([^'\"]*)", html)  # real tags, not escaped text
    assert all(not h.lower().startswith(("javascript", "data", "vbscript", "file")) for h in hrefs)
    assert "<a href='javascript" not in html and '<a href="javascript' not in html


def test_docs_raw_html_is_text_and_remote_images_are_not_loaded():
    html = render_docs(
        "<script>alert(1)</script>\n\n<img src=x onerror=alert(1)>\n\n"
        "![tracker](https://evil.example/pixel.png) [ok](https://example.org/a)"
    )
    assert "<script" not in html and "<img" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    # the image is a link the reader may follow, never fetched by the page
    assert "href='https://evil.example/pixel.png'" in html and "[image: tracker]" in html
    assert 'href="https://example.org/a" rel="nofollow noopener noreferrer"' in html


# ---- usage examples -----------------------------------------------------------------------


def test_sample_inputs_follow_dtype_and_shape():
    string = sample_input({"dtype": "string", "shape": [None]}, [])
    assert string.startswith("tf.constant([") and string.count('"') == 4  # two sentences
    image = sample_input({"dtype": "float32", "shape": [None, None, None, 3]}, [])
    assert image.startswith("tf.random.uniform([2, 224, 224, 3])")
    fixed = sample_input({"dtype": "float32", "shape": [None, 96, 96, 3]}, ["image-classifier"])
    assert fixed.startswith("tf.random.uniform([2, 96, 96, 3])")
    any_image = sample_input({"dtype": "float32", "shape": None}, ["image-feature-vector"])
    assert any_image.startswith("tf.random.uniform([2, 224, 224, 3])")
    assert (
        sample_input({"dtype": "int32", "shape": [None, 128]}, []) == "tf.ones([2, 128], tf.int32)"
    )
    assert sample_input({"dtype": "float16", "shape": [None, 4]}, []) == (
        "tf.random.uniform([2, 4], dtype=tf.float16)"
    )


def test_usage_for_each_format():
    tf2 = usage_examples(_record(), URL)
    assert [u.title.split(":")[0] for u in tf2] == ["TF2 SavedModel", "Keras", "SavedModel"]
    assert f'hub.KerasLayer("{URL}")' in tf2[0].code and "import tfhub as hub" in tf2[0].code
    assert tf2[0].output == "(2, 8)" and "print(outputs.shape)  # (2, 8)" in tf2[0].code
    assert 'keras.Input(shape=(), dtype="string")' in tf2[1].code
    assert 'model.signatures["serving_default"](sentences=tf.constant([' in tf2[2].code
    tf1 = _record(format="hub")
    tf1["info"]["variants"][0].update(tags=[])
    tf1["info"]["variants"][0]["signatures"] = {
        "default": {
            "inputs": {"default": {"dtype": "float32", "shape": [None, 2], "kind": "dense"}},
            "outputs": {"default": {"dtype": "float32", "shape": [None, 1], "kind": "dense"}},
        }
    }
    (module,) = usage_examples(tf1, URL)
    assert f'hub.Module("{URL}")' in module.code and "tf.compat.v1.Session()" in module.code
    assert 'module(inputs, signature="default", as_dict=True)' in module.code
    assert module.output == "default (2, 1)"
    for example in [*tf2, module]:
        compile(example.code, "snippet", "exec")  # every example is valid Python


# ---- model page ---------------------------------------------------------------------------


def test_model_page_versions_files_downloads_provenance():
    provenance = {"source": "https://www.kaggle.com/models/g/enc/tensorFlow2/v/2",
                  "sha256": "d" * 64, "size": 5000, "fetched": "2026-11-01T00:00:00Z",
                  "license": "Apache 2.0", "docs": "javascript:alert(1)"}  # fmt: skip
    downloads = {"total": 42, "last_30_days": 7, "by_version": {"1": 40, "2": 2},
                 "by_day": [["2026-11-26", 3], ["2026-11-27", 4]]}  # fmt: skip
    html = model_page(_record(provenance=provenance), [1, 2], URL, downloads=downloads)
    text = _text(html)
    assert "v2 (this page) latest" in " ".join(text.split())
    assert "href='/test/enc/1'" in html
    assert "href='/api/blobs/" + "c" * 64 + "?name=variables.index'" in html
    assert "href='/test/enc/2?tf-hub-format=compressed'" in html
    assert "2.9 kB" in text  # saved_model.pb's size
    assert "42 in all, 7 in the last 30 days" in " ".join(text.split())
    assert "<meter min='0' max='4' value='3'>" in html
    assert "href='https://www.kaggle.com/models/g/enc/tensorFlow2/v/2'" in html
    assert "Apache 2.0" in text and "d" * 64 in text
    assert "href='javascript" not in html  # a hostile provenance link stays text
    # an older record: no blobs, downloads or provenance, still a page
    old = _record()
    del old["blobs"]
    html = model_page(old, [2], URL)
    assert "Downloads</h2>" not in html and "Provenance" not in html
    assert "published before the hub listed files" in html


def test_model_page_escapes_everything_a_publisher_writes():
    evil = "<img src=x onerror=alert(1)>"
    record = _record(
        docs={
            "title": evil,
            "description": evil,
            "markdown": evil,
            "metadata": {"license": [evil], "module-type": [evil]},
        },
    )
    record["blobs"]["files"][0]["path"] = evil
    html = model_page(record, [2], URL)
    assert "<img" not in html


# ---- catalog page -------------------------------------------------------------------------


def test_catalog_cards_with_and_without_the_catalog_keys():
    plain = _record()
    plain.update(versions=[1, 2])  # today's search items: no downloads, size, latest_version
    rich = _record(model="big", versions=[1, 3], latest_version=3, downloads=1234, size=3 << 20)
    html = catalog_page(
        [plain, rich], query=CatalogQuery(), facets={"license": [("mit", 2)]}, total=2,
        per_page=20,
    )  # fmt: skip
    cards = re.findall(r"<div class='card model'>.*?</div>", html)
    assert len(cards) == 2
    first, second = (" ".join(_text(c).split()) for c in cards)
    assert "v2 (latest) · 2 versions · 4.0 kB" in first and "download" not in first
    assert "v3 (latest) · 2 versions · 3.0 MB · 1234 downloads" in second
    assert "text-embedding" in first and "mit" in first and "TF2 SavedModel" in first


def test_catalog_facets_sort_and_pages():
    models = [
        _record(model=f"m{i:02d}", published_at=f"2026-01-{i + 1:02d}", downloads=i % 5,
                versions=[1])
        for i in range(45)
    ]  # fmt: skip
    models[3]["docs"] = {"metadata": {"license": ["apache-2.0"]}}
    # the counts come from the catalog's search (tests/test_catalog_db.py), as it gives them
    facets = {"license": [("mit", 44), ("apache-2.0", 1)], "publisher": [("test", 45)]}
    query = CatalogQuery(q="enc", filters={"license": "mit"}, sort="downloads", page=2)
    html = catalog_page(models[20:40], query=query, facets=facets, total=45, per_page=20)
    assert "Page 2 of 3" in html
    assert "href='/?q=enc&amp;license=mit&amp;sort=downloads'" in html  # previous: page 1
    assert "href='/?q=enc&amp;license=mit&amp;sort=downloads&amp;page=3'" in html
    assert "<option value='downloads' selected>" in html
    assert "<input type='hidden' name='license' value='mit'>" in html
    # the active facet value links to the same search without it; others switch to theirs
    assert "<a href='/?q=enc&amp;sort=downloads' data-facet='license' data-value='mit'" in html
    assert "<span class='n'>44</span>" in html
    assert "href='/?q=enc&amp;license=apache-2.0&amp;sort=downloads'" in html


def test_not_found_page_and_download_names():
    html = not_found_page("No model at /<b>x</b>.")
    assert "Page not found" in html and "&lt;b&gt;x&lt;/b&gt;" in html and "action='/'" in html
    assert download_name("variables/variables.data-00000-of-00001") == (
        "variables.data-00000-of-00001"
    )
    assert download_name('a"; filename=evil.sh\r\nX-Bad: 1') == "a_filename_evil.sh_X-Bad_1"
    assert download_name("..\\..\\.bashrc") == "bashrc"
    assert download_name("") is None and download_name("../..") is None


# ---- HEAD ---------------------------------------------------------------------------------


def test_head_stops_the_app_once_its_headers_are_out():
    import asyncio

    from tfhub.server.head import HeadAsGet

    produced = []

    async def app(scope, receive, send):  # a streaming GET of five chunks
        assert scope["method"] == "GET"
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"5")]})  # fmt: skip
        for i in range(5):
            produced.append(i)
            await send({"type": "http.response.body", "body": b"x", "more_body": i < 4})

    async def run(method):
        sent = []

        async def send(message):
            sent.append(message)

        scope = {"type": "http", "method": method, "path": "/"}
        await HeadAsGet(app)(scope, None, send)
        assert scope["method"] == method  # the server's own scope is untouched
        return sent

    head = asyncio.run(run("HEAD"))
    assert [m["type"] for m in head] == ["http.response.start", "http.response.body"]
    assert head[0]["headers"] == [(b"content-length", b"5")] and head[1]["body"] == b""
    assert produced == []  # no body produced: a HEAD is never a download
    produced.clear()
    get = asyncio.run(run("GET"))
    assert b"".join(m.get("body", b"") for m in get) == b"xxxxx" and produced == [0, 1, 2, 3, 4]
