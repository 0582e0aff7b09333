"""The sentence-transformer import writes its export complete or not at all: a checkpoint
that fails half-way through the conversion (after the preprocessor was saved) leaves nothing.

Its own file (the conversion takes minutes before it fails) so that the two xdist workers
share the sentence-transformer tests.
"""

from __future__ import annotations

import os
import re

import pytest

from tests.helpers.checkpoints import copy_checkpoint, edit_json
from tfhub.errors import NotAModelError
from tfhub.exporters.sentence_transformer import import_sentence_transformer


def test_a_failure_while_saving_leaves_nothing_behind(tmp_path):
    model = copy_checkpoint(tmp_path / "model")
    edit_json(model / "config.json", num_hidden_layers=7)  # no weights for layer 6
    out_parent = tmp_path / "exports"
    out_parent.mkdir()
    with pytest.raises(NotAModelError, match=re.escape("encoder.layer.6")):
        import_sentence_transformer(model, out_parent / "out")
    assert os.listdir(out_parent) == []
