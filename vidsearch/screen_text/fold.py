"""Text as a reader may confuse it: one form for what was read and what is asked, so that "KX 4471" finds a plate
read as "KX447I" or "kx-4471"."""

from __future__ import annotations

# characters OCR takes for one another, each mapped to one of its class (after upper-casing)
_CONFUSED = str.maketrans({"0": "O", "Q": "O", "1": "I", "L": "I", "|": "I", "5": "S", "8": "B", "2": "Z"})


def fold(text: str) -> str:
    """Upper case, confusable characters made one, and nothing but letters and digits (no spaces, no dashes)."""
    return "".join(ch for ch in text.upper().translate(_CONFUSED) if ch.isalnum())


def tolerated_edits(folded_query: str) -> int:
    """Edits a query may be off by beyond the folded confusions: one in six characters (none for a short query,
    where one edit would match too much)."""
    return len(folded_query) // 6


def match_score(folded_query: str, folded_text: str, edits: int) -> float:
    """1 for a text that is the query; less for edits, and a little less for a query that is only part of a line."""
    if not folded_query:
        return 0.0
    return (1 - edits / len(folded_query)) * (0.9 + 0.1 * min(1.0, len(folded_query) / max(1, len(folded_text))))


def edits_to_fit(needle: str, haystack: str) -> int:
    """The fewest single-character edits that make `needle` a substring of `haystack` (approximate substring
    matching: a reading may miss or add a character of a plate, on either side of it a line goes on)."""
    previous = list(range(len(needle) + 1))  # a match may start anywhere in the haystack: row 0 costs nothing
    best = previous[-1]
    for ch in haystack:
        current = [0]
        for i, wanted in enumerate(needle, 1):
            current.append(min(previous[i - 1] + (wanted != ch), previous[i] + 1, current[i - 1] + 1))
        best = min(best, current[-1])
        previous = current
    return best
