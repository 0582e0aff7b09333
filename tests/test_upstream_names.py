"""Upstream handle forms, mirror paths and the handle map: pure functions, no network."""

from __future__ import annotations

import pytest

from tfhub.errors import ConfigError, InvalidHandleError, UpstreamHandleError
from tfhub.handles import upstream

SHORT = "https://www.kaggle.com/models/google/mobilenet-v2/tensorFlow2/100-224-feature-vector/2"
LONG = (
    "https://www.kaggle.com/models/google/mobilenet-v2/frameworks/TensorFlow2/variations/"
    "100-224-feature-vector/versions/2"
)
NORMAL = "https://www.kaggle.com/models/google/mobilenet-v2/tensorflow2/100-224-feature-vector/2"


@pytest.mark.parametrize("handle", [SHORT, LONG, NORMAL, LONG.replace("www.", ""), LONG + "/"])
def test_both_kaggle_spellings_normalize_to_one(handle):
    assert upstream.normalize(handle) == NORMAL
    assert upstream.kind(handle) == "kaggle"
    assert (
        upstream.mirror_path(handle) == "google/mobilenet-v2/tensorflow2/100-224-feature-vector/2"
    )


@pytest.mark.parametrize(
    "handle,kind",
    [
        ("https://tfhub.dev/google/nnlm-en-dim50/2", "tfhub.dev"),
        ("http://tfhub.dev/google/nnlm-en-dim50/2", "tfhub.dev"),
        ("https://hub.tensorflow.google.cn/google/nnlm-en-dim50/2", "tfhub-cn"),
        ("https://tfhub.dev/google/imagenet/mobilenet_v2_100_224/classification/5", "tfhub.dev"),
        ("https://hub.example.com/google/nnlm/2", None),
        ("https://tfhub.dev/google/nnlm", None),  # no version
        ("https://tfhub.dev/google/nnlm/2?x=1", None),
        ("https://www.kaggle.com/models/google/bert/tensorFlow2/x", None),  # no version
        ("https://www.kaggle.com/models/google/bert/frameworks/a/variations/b/versions/x", None),
        ("/local/path", None),
    ],
)
def test_kind(handle, kind):
    assert upstream.kind(handle) == kind
    assert upstream.is_upstream(handle) is (kind is not None)


@pytest.mark.parametrize(
    "handle",
    ["https://tfhub.dev/google/nnlm-en-dim50/2", "https://hub.example.com/google/nnlm-en-dim50/2"],
)
def test_non_kaggle_handles_are_unchanged(handle):
    assert upstream.normalize(handle) == handle


@pytest.mark.parametrize(
    "handle,path",
    [
        ("https://tfhub.dev/google/nnlm-en-dim50/2", "google/nnlm-en-dim50/2"),
        (
            "https://tfhub.dev/google/imagenet/mobilenet_v2/classification/5/",
            "google/imagenet/mobilenet_v2/classification/5",
        ),
        ("http://hub.corp:8080/team/model/7", "team/model/7"),
        ("https://hub.tensorflow.google.cn/google/nnlm-en-dim50/2", "google/nnlm-en-dim50/2"),
    ],
)
def test_mirror_path(handle, path):
    assert upstream.mirror_path(handle) == path


@pytest.mark.parametrize(
    "handle",
    [
        "https://tfhub.dev/google/nnlm",  # no version
        "https://tfhub.dev/google/nnlm/2?tf-hub-format=compressed",
        "https://tfhub.dev/google/../etc/2",
        "https://tfhub.dev/google//x/2",
        "https://user@tfhub.dev/google/x/2",
        "gs://bucket/google/x/2",
        "/srv/models/x/2",
        "https://www.kaggle.com/models/google/bert/tensorFlow2/x",
        "https://www.kaggle.com/google/bert/2",
    ],
)
def test_mirror_path_refuses_anything_else(handle):
    with pytest.raises(UpstreamHandleError, match="mirror path") as info:
        upstream.mirror_path(handle)
    assert isinstance(info.value, InvalidHandleError) and info.value.handle == handle


def test_cn_archive_url_is_where_tensorflow_hub_fetches_it():
    assert (
        upstream.cn_archive_url("https://hub.tensorflow.google.cn/google/nnlm-en-dim50/2")
        == "https://gcs.tensorflow.google.cn/tfhub-modules/google/nnlm-en-dim50/2.tar.gz"
    )
    assert upstream.cn_archive_url("https://tfhub.dev/google/nnlm-en-dim50/2") is None


def test_rewrite_longest_prefix_wins_after_normalisation(monkeypatch, tmp_path):
    monkeypatch.setenv(
        "TFHUB_HANDLE_MAP",
        "https://tfhub.dev/=https://hub.corp/  https://tfhub.dev/google/=https://g.corp/g/\n"
        "https://www.kaggle.com/models/=https://hub.corp/",
    )
    monkeypatch.delenv("TFHUB_HANDLE_MAP_FILE", raising=False)
    new, rule = upstream.rewrite("https://tfhub.dev/google/nnlm/2")
    assert new == "https://g.corp/g/nnlm/2"
    assert rule is not None and rule.old == "https://tfhub.dev/google/"
    assert "TFHUB_HANDLE_MAP" in str(rule)
    assert upstream.rewrite("https://tfhub.dev/other/x/1")[0] == "https://hub.corp/other/x/1"
    for spelling in (SHORT, LONG):
        new, rule = upstream.rewrite(spelling)
        assert new == "https://hub.corp/" + upstream.mirror_path(spelling)
    assert upstream.rewrite("https://elsewhere/x/y/1") == ("https://elsewhere/x/y/1", None)


def test_map_file_rules_and_comments(monkeypatch, tmp_path):
    rules = tmp_path / "map.txt"
    rules.write_text(
        "# the corp mirror\n\nhttps://tfhub.dev/=https://hub.corp/   # all of tfhub.dev\n"
        "  https://tfhub.dev/google/=/srv/google/\n"
    )
    monkeypatch.delenv("TFHUB_HANDLE_MAP", raising=False)
    monkeypatch.setenv("TFHUB_HANDLE_MAP_FILE", str(rules))
    new, rule = upstream.rewrite("https://tfhub.dev/google/x/3")
    assert new == "/srv/google/x/3"
    assert rule is not None and rule.origin == f"{rules}:4"
    assert upstream.rewrite("https://tfhub.dev/a/x/3")[0] == "https://hub.corp/a/x/3"


@pytest.mark.parametrize("value", ["https://tfhub.dev/", "=https://x/", "a=b=c", "https://x/="])
def test_bad_map_rules_name_the_variable(monkeypatch, value):
    monkeypatch.setenv("TFHUB_HANDLE_MAP", value)
    monkeypatch.delenv("TFHUB_HANDLE_MAP_FILE", raising=False)
    with pytest.raises(ConfigError, match=r"TFHUB_HANDLE_MAP.*OLD_PREFIX=NEW_PREFIX"):
        upstream.rewrite("https://tfhub.dev/google/x/1")


def test_unreadable_map_file_names_the_variable(monkeypatch, tmp_path):
    monkeypatch.delenv("TFHUB_HANDLE_MAP", raising=False)
    monkeypatch.setenv("TFHUB_HANDLE_MAP_FILE", str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match=r"TFHUB_HANDLE_MAP_FILE=.*cannot be read"):
        upstream.rewrite("https://tfhub.dev/google/x/1")
