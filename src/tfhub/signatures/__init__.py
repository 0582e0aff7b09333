"""Common signatures and their helpers.

:mod:`tfhub.signatures.image`: the TF1 image module info (expected size and channels).
:mod:`tfhub.signatures.common`: which common signatures a model implements, and validators
(the public API, over :mod:`tfhub.signatures.checks`, the check engine, and
:mod:`tfhub.signatures.results`, the names and result types). All of them read descriptions
from :mod:`tfhub.describe`, the layer below.
"""
