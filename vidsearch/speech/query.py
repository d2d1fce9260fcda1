"""`said` queries: words and "quoted phrases" to an SQLite FTS5 expression (stemmed by the index's porter
tokenizer), the words of a segment that match, and the tolerant match that also admits words the recognizer may
have misheard (alike in letters or in sound). Pure functions: the catalog runs the expressions."""

from __future__ import annotations

import re
from itertools import combinations
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

_TOKEN = re.compile(r"\w+(?:'\w+)?")
_PART = re.compile(r'"([^"]*)"|([^\s"]+)')


@dataclass(frozen=True, slots=True)
class SaidQuery:
    """The query's units, each a word or a phrase (consecutive words), all of which a segment must contain."""

    units: tuple[tuple[str, ...], ...]

    @property
    def words(self) -> list[str]:
        return [word for unit in self.units for word in unit]


def parse_said(text: str) -> SaidQuery:
    units = [tuple(tokens(phrase or word)) for phrase, word in _PART.findall(text)]
    return SaidQuery(tuple(unit for unit in units if unit))


def tokens(text: str) -> list[str]:
    """The words of a text, lower case, without punctuation ("Lot." is "lot"; "don't" stays whole)."""
    return [token.lower() for token in _TOKEN.findall(text)]


def fts_expression(query: SaidQuery, alternatives: dict[str, Sequence[str]] | None = None) -> str:
    """The FTS5 MATCH text: units joined by AND. Tolerant (with `alternatives`): each word may also be any of its
    alternatives, a phrase's words need not be adjacent, and a phrase of three words or more matches with up to
    a quarter of its words missing (a recognizer's mishearing: "bus stop" heard as "most stop")."""
    if alternatives is None:
        return " AND ".join(_quoted(" ".join(unit)) for unit in query.units)

    def word(w: str) -> str:
        return "(" + " OR ".join(_quoted(each) for each in (w, *alternatives.get(w, ()))) + ")"

    def unit(words: tuple[str, ...]) -> str:
        kept = len(words) - tolerated_misses(len(words))
        if kept == len(words):
            return " AND ".join(map(word, words))
        return "(" + " OR ".join(
            "(" + " AND ".join(map(word, chosen)) + ")" for chosen in combinations(words, kept)
        ) + ")"

    return " AND ".join(unit(u) for u in query.units)


def tolerated_misses(words: int) -> int:
    """Words a tolerant phrase of this length may miss: a quarter, at least one from three words on."""
    return max(1, words // 4) if words >= 3 else 0


def _quoted(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def matched_positions(
    query: SaidQuery, count: int, matches: Callable[[str, int], bool], adjacent: bool = True
) -> tuple[int, ...]:
    """Positions among a segment's `count` words that the query's units match: every occurrence of a single word,
    and runs of consecutive words for a phrase (any occurrence of its words when not `adjacent`).
    `matches(query_word, position)` says whether the spoken word there is the query's word (stemmed)."""
    found: set[int] = set()
    for unit in query.units if adjacent else [(word,) for word in query.words]:
        for first in range(count - len(unit) + 1):
            if all(matches(want, first + i) for i, want in enumerate(unit)):
                found.update(range(first, first + len(unit)))
    return tuple(sorted(found))


def similar_words(word: str, vocabulary: Iterable[str], min_similarity: float = 0.5) -> list[str]:
    """Words of `vocabulary` a recognizer may have written for `word`: alike in letters (Dice coefficient of
    character bigrams at least `min_similarity`) or in sound (the same phonetic key)."""
    grams, key = _bigrams(word), sound_key(word)
    return [
        other for other in vocabulary
        if other != word and (_dice(grams, _bigrams(other)) >= min_similarity or sound_key(other) == key)
    ]


def _bigrams(word: str) -> set[str]:
    padded = f" {word} "
    return {padded[i:i + 2] for i in range(len(padded) - 1)}


def _dice(a: set[str], b: set[str]) -> float:
    return 2 * len(a & b) / (len(a) + len(b)) if a or b else 0.0


_SOUNDEX = {**dict.fromkeys("bfpv", "1"), **dict.fromkeys("cgjkqsxz", "2"), **dict.fromkeys("dt", "3"),
            "l": "4", **dict.fromkeys("mn", "5"), "r": "6"}


def sound_key(word: str) -> str:
    """American Soundex: the first letter and three digits for the consonants that follow ("parked" P623)."""
    letters = [c for c in word.lower() if c.isalpha()]
    if not letters:
        return ""
    digits, last = [], _SOUNDEX.get(letters[0], "")
    for c in letters[1:]:
        code = _SOUNDEX.get(c, "")
        if code and code != last:
            digits.append(code)
        if c not in "hw":
            last = code
    return (letters[0].upper() + "".join(digits) + "000")[:4]
