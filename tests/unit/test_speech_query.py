"""The pure parts of speech search: said queries to FTS5 expressions, matched words, tolerant alternatives, the
hallucination guard and reciprocal-rank fusion."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from vidsearch.config import default_settings
from vidsearch.records import Hit, Item
from vidsearch.speech.records import SpeechHit, SpeechMatch, SpeechSegment, SpokenWord
from vidsearch.services.speech import RRF_K, SEEK_LEAD_S, fused, seek_start
from vidsearch.speech.query import fts_expression, matched_positions, parse_said, similar_words, sound_key
from vidsearch.speech.transcribe import is_heard


def test_words_and_quoted_phrases_become_an_fts_expression():
    query = parse_said('Bag "parking  LOT" "" it\'s')
    assert query.units == (("bag",), ("parking", "lot"), ("it's",))
    assert fts_expression(query) == '"bag" AND "parking lot" AND "it\'s"'
    assert fts_expression(parse_said('say "x""')) == '"say" AND "x"'  # a stray quote cannot break the syntax


def test_tolerant_expressions_admit_alternatives_of_each_word_and_a_misheard_word_of_a_phrase():
    query = parse_said('"evidence bag"')
    assert fts_expression(query, {"bag": ["mag"]}) == '("evidence") AND ("bag" OR "mag")'
    three = fts_expression(parse_said('"bus stop" "keys by door"'), {})
    assert three == '("bus") AND ("stop") AND ((("keys") AND ("by")) OR (("keys") AND ("door")) OR (("by") AND ("door")))'


def test_a_phrase_matches_its_words_in_order_only():
    spoken = ["the", "lot", "parking", "lot", "full"]

    def matches(word, position):
        return spoken[position] == word

    query = parse_said('"parking lot"')
    assert matched_positions(query, len(spoken), matches) == (2, 3)
    assert matched_positions(parse_said("lot"), len(spoken), matches) == (1, 3)
    assert matched_positions(parse_said('"lot parking lot"'), len(spoken), matches) == (1, 2, 3)
    assert matched_positions(parse_said('"full lot"'), len(spoken), matches) == ()
    assert matched_positions(parse_said('"full lot"'), len(spoken), matches, adjacent=False) == (1, 3, 4)


def test_similar_words_are_alike_in_letters_or_in_sound():
    assert sound_key("parked") == "P623" and sound_key("Robert") == sound_key("Rupert") == "R163"
    assert similar_words("bag", ["mag", "bags", "table", "bag", "back"]) == ["mag", "bags", "back"]
    assert similar_words("knife", ["night", "life", "station"]) == ["life"]


def _segment(text="He parked the car.", avg_logprob=-0.3, no_speech_prob=0.05, words=True):
    spoken = tuple(SpokenWord(i, i + 0.5, w, 0.9) for i, w in enumerate(text.split())) if words else ()
    return SpeechSegment(0.0, 2.0, text, "en", avg_logprob, no_speech_prob, spoken)


def test_the_guard_drops_what_whisper_writes_into_noise():
    config = default_settings(Path("archive")).speech
    assert is_heard(_segment(), config)
    assert is_heard(_segment(no_speech_prob=0.9), config)  # sure of its words: speech over noise
    assert not is_heard(_segment("Thank you.", avg_logprob=-1.2, no_speech_prob=0.8), config)
    assert not is_heard(_segment("You", avg_logprob=-0.92, no_speech_prob=0.94), config)  # tiny.en over silence
    assert not is_heard(_segment(avg_logprob=-1.8), config)
    assert not is_heard(_segment(" ", words=False), config)


def test_reciprocal_rank_fusion_interleaves_the_lists():
    pictures = [
        Hit(rank=r, score=0.3, item=Item(vector_id=r, kind="frame", frame_index=0, t=0.0), video=Path("v.mp4"))
        for r in (1, 2)
    ]
    match = SpeechMatch(9, Path("v.mp4"), 1.0, 2.0, "bag", (SpokenWord(1.0, 2.0, "bag", 0.9),), (0,))
    speech = [SpeechHit(rank=1, score=7.5, match=match), SpeechHit(rank=2, score=3.0, match=replace(match, segment_id=8))]
    ranking = fused([pictures, speech])
    assert [type(hit).__name__ for hit in ranking] == ["Hit", "SpeechHit", "Hit", "SpeechHit"]
    assert [hit.rank for hit in ranking] == [1, 2, 3, 4]
    assert ranking[0].score == ranking[1].score == 1 / (RRF_K + 1)
    assert ranking[1].to_json()["words"] == [{"start": 1.0, "end": 2.0, "word": "bag", "probability": 0.9, "matched": True}]


def test_a_match_starts_before_a_word_said_after_another_but_never_before_that_words_middle():
    words = (SpokenWord(0.4, 1.5, " parking", 0.9), SpokenWord(1.5, 2.0, " lot", 0.9),
             SpokenWord(2.0, 2.1, " a", 0.9), SpokenWord(2.1, 2.6, " van", 0.9))
    assert seek_start(words, 0) == 0.4  # the segment's first word, after silence: its own start
    assert seek_start(words, 1) == 1.5 - SEEK_LEAD_S  # "parking" is long: the whole lead
    assert seek_start(words, 3) == 2.05  # "a" is short: no earlier than its middle
