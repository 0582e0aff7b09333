"""Per-code-point tables for BERT's text normalization and splitting, built with ``unicodedata``.

BERT's normalizer works character by character: it drops control characters, turns
whitespace into spaces, separates CJK ideographs, strips accents (NFD, then drop the
non-spacing marks) and lower-cases. Each step maps one code point to zero or more code points
independently of its neighbours, so the whole normalizer is a table from a code point to its
replacement, which the exported TensorFlow graph applies with plain tensor ops. A second table
classifies the normalized code points for splitting into words: whitespace separates words,
punctuation and CJK ideographs are words on their own.

The tables follow the Unicode version of the Python that runs the export (``unicodedata``).
The reference tokenizer (Hugging Face ``tokenizers``) has older Unicode category tables: for
about 560 rarely used code points added in recent Unicode versions (new combining marks,
format characters and punctuation) the two disagree.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

import numpy as np

__all__ = [
    "DELETE",
    "ISOLATED",
    "KEEP",
    "MAPPED",
    "SEPARATOR",
    "SPACE",
    "WORD",
    "CharTables",
    "build_tables",
]

# Normalization kinds of an input code point.
KEEP, DELETE, SPACE, MAPPED = 0, 1, 2, 3
# Classes of a normalized code point.
WORD, SEPARATOR, ISOLATED = 0, 1, 2

_MAX_CODE_POINT = 0x110000
# CJK ideograph blocks that BERT tokenizes one character at a time (the original BERT list).
_CJK_RANGES = (
    (0x4E00, 0x9FFF),
    (0x3400, 0x4DBF),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F),
    (0x2B920, 0x2CEAF),
    (0xF900, 0xFAFF),
    (0x2F800, 0x2FA1F),
)
_ASCII_PUNCTUATION = ((33, 47), (58, 64), (91, 96), (123, 126))
# Categories that BERT's text cleaning removes ("other" minus unassigned).
_REMOVED_CATEGORIES = frozenset({"Cc", "Cf", "Co", "Cs"})


@dataclass(frozen=True)
class CharTables:
    """The tables, as arrays ready to become constants.

    ``norm_starts``/``norm_kinds``: sorted starts of code point ranges and each range's
    normalization kind (KEEP, DELETE, SPACE or MAPPED). ``mapped_keys``: the MAPPED code points;
    row ``i + 1`` of the ragged ``replacement_values``/``replacement_splits`` is the
    replacement of ``mapped_keys[i]`` (row 0 is empty). ``class_starts``/``class_kinds``: the
    same range encoding for WORD, SEPARATOR and ISOLATED.
    """

    norm_starts: np.ndarray
    norm_kinds: np.ndarray
    mapped_keys: np.ndarray
    replacement_values: np.ndarray
    replacement_splits: np.ndarray
    class_starts: np.ndarray
    class_kinds: np.ndarray


def _is_whitespace(char: str) -> bool:
    # Unicode's White_Space property: str.isspace() less the information separators 1C-1F.
    return char.isspace() and not "\x1c" <= char <= "\x1f"


def _ranges(kinds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    starts = np.concatenate([[0], np.flatnonzero(np.diff(kinds)) + 1]).astype(np.int32)
    return starts, kinds[starts].astype(np.int32)


def build_tables(
    *,
    lowercase: bool,
    strip_accents: bool,
    clean_text: bool,
    chinese_chars: bool,
    kept: frozenset[int] = frozenset(),
    isolated: frozenset[int] = frozenset(),
) -> CharTables:
    """Builds the normalization and splitting tables over all of Unicode.

    Args:
        lowercase: lower-case (per code point, as the reference does).
        strip_accents: decompose (NFD) and drop non-spacing marks (category Mn).
        clean_text: drop NUL, U+FFFD and control/format/private-use/surrogate code points, and
            turn whitespace into a space.
        chinese_chars: make each CJK ideograph a word of its own.
        kept: code points that normalization must leave alone (placeholders for special
            tokens).
        isolated: code points that are words of their own (the same placeholders).

    Returns:
        The tables.
    """
    norm = np.zeros(_MAX_CODE_POINT, dtype=np.int8)
    classes = np.zeros(_MAX_CODE_POINT, dtype=np.int8)
    mapped: dict[int, list[int]] = {}
    for code in range(_MAX_CODE_POINT):
        char = chr(code)
        category = unicodedata.category(char)
        if category == "Cn" and code not in kept:
            continue  # unassigned: kept as is, part of words (the bulk of the code space)
        if _is_whitespace(char):
            classes[code] = SEPARATOR
        elif category[0] == "P":
            classes[code] = ISOLATED
        if code in kept:
            continue
        if clean_text:
            if char in "\t\n\r":
                norm[code] = SPACE
                continue
            if code in (0, 0xFFFD) or category in _REMOVED_CATEGORIES:
                norm[code] = DELETE
                continue
            if _is_whitespace(char):
                norm[code] = SPACE
                continue
        text = char
        if strip_accents:
            if category == "Mn":
                norm[code] = DELETE
                continue
            if unicodedata.decomposition(char) or 0xAC00 <= code <= 0xD7A3:  # Hangul: computed
                text = unicodedata.normalize("NFD", text)
                text = "".join(c for c in text if unicodedata.category(c) != "Mn")
        if lowercase:
            # Character by character, as the reference does (no final-sigma rule).
            text = text.lower() if len(text) == 1 else "".join(c.lower() for c in text)
        if text == char:
            continue
        if not text:
            norm[code] = DELETE
        else:
            norm[code] = MAPPED
            mapped[code] = [ord(c) for c in text]
    # BERT counts every non-alphanumeric printable ASCII character as punctuation ($, +, ^...).
    for low, high in _ASCII_PUNCTUATION + (_CJK_RANGES if chinese_chars else ()):
        classes[low : high + 1] = ISOLATED
    for code in isolated:
        classes[code] = ISOLATED
    norm_starts, norm_kinds = _ranges(norm)
    class_starts, class_kinds = _ranges(classes)
    keys = sorted(mapped)
    lengths = [0] + [len(mapped[k]) for k in keys]
    values = [c for k in keys for c in mapped[k]]
    return CharTables(
        norm_starts=norm_starts,
        norm_kinds=norm_kinds,
        mapped_keys=np.asarray(keys, dtype=np.int64),
        replacement_values=np.asarray(values, dtype=np.int32),
        replacement_splits=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32),
        class_starts=class_starts,
        class_kinds=class_kinds,
    )
