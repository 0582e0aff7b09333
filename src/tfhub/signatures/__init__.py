"""Common signatures and their helpers.

:mod:`tfhub.signatures.image`: the TF1 image module info (expected size and channels).
:mod:`tfhub.signatures.common`: which common signatures a model implements, and validators.
"""
