"""Names and constants of the TF Hub hosting protocol, shared by our client and server.

A model handle ``https://host/<publisher>/<model>/<version>`` serves the model page to a
browser; the query parameter ``tf-hub-format`` asks for the model itself:

* ``compressed``: a tar (usually gzip-compressed) whose root is the model directory;
* ``uncompressed``: a ``303 See Other`` whose body is the storage location (``gs://...``).
"""

from __future__ import annotations

import os
import re

FORMAT_PARAM = "tf-hub-format"
COMPRESSED = "compressed"
UNCOMPRESSED = "uncompressed"

# The fast path between a tfhub client and a tfhub server. The client asks for the compressed
# format as usual and adds ``Accept: FILES_MEDIA_TYPE``; a server that has the model's files
# stored one by one answers with a JSON manifest instead of the tarball:
#   {"version": 1, "block_size": B, "files": [{"path", "size", "sha256", "url",
#    "blocks": [sha256 of each B-byte block, in order]}]}
# Each ``url`` (relative to the request URL) serves the file's bytes with Range support.
# Every other client sends no such Accept value and gets the tarball, unchanged.
FILES_MEDIA_TYPE = "application/vnd.tfhub.files+json"
FILES_MANIFEST_VERSION = 1

# Files whose presence makes a directory a model (checked in this order).
SAVED_MODEL_PB = "saved_model.pb"
SAVED_MODEL_PBTXT = "saved_model.pbtxt"
TF1_MODULE_PB = "tfhub_module.pb"
MODEL_FILES = (SAVED_MODEL_PB, SAVED_MODEL_PBTXT, TF1_MODULE_PB)


def is_model_dir(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` holds a model at its root (one of :data:`MODEL_FILES`)."""
    return any(os.path.isfile(os.path.join(path, name)) for name in MODEL_FILES)


# Publisher ids and model names as the tfhub.dev docs format defines them.
# ASCII only (``\d`` and ``\w`` would accept other scripts' digits and letters); use fullmatch.
PUBLISHER_RE = re.compile(r"[a-z0-9][a-z0-9-]*", re.ASCII)
MODEL_NAME_RE = re.compile(r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*", re.ASCII)
VERSION_RE = re.compile(r"[1-9][0-9]*", re.ASCII)
