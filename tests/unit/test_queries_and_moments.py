"""The pure parts of people search: the attribute vocabulary file and the words that name its labels, frame hits
merged into moments, person crops grouped by appearance, and the query parser."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from vidsearch.attributes import load_vocabulary
from vidsearch.errors import ConfigError
from vidsearch.records import Hit, Item
from vidsearch.search import best_per_appearance, merge_moments, parse_query
from vidsearch.records import StoredAppearance


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version: 2\ngroups: {}", "version"),
        ("version: 1\ngroups:\n  hat:\n    labels: [yes]\n    prompts: ['a {label} hat']", "at least two labels"),
        ("version: 1\ngroups:\n  hat:\n    labels: [a, b]", "plain-word labels need prompt templates"),
        ("version: 1\ngroups:\n  hat:\n    labels: [a, b]\n    prompts: ['no placeholder']", "each with {label}"),
        ("version: 1\ngroups:\n  hat:\n    labels: [a, b]\n    prompts: ['{label}']\n    mentioned_by: '(['",
         "bad regular expression"),
        ("version: 1\ngroups:\n  hat:\n    labels: [a, b]\n    colour: red", "unknown keys"),
        ("version: [1", "not valid YAML"),
    ],
)
def test_a_bad_vocabulary_is_refused_with_its_place_named(tmp_path, text, message):
    path = tmp_path / "attributes.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as raised:
        load_vocabulary(path)
    assert str(raised.value).startswith(str(path))


def test_queries_name_attributes_by_their_words():
    mentions = load_vocabulary().mentions
    assert [(m.group, m.label) for m in mentions("woman in a black t-shirt and blue jeans")] == [
        ("upper_color", "black"), ("upper_garment", "t-shirt"), ("lower_color", "blue"), ("lower_garment", "jeans")
    ]
    assert [(m.group, m.label) for m in mentions("man without glasses carrying a backpack")] == [
        ("glasses", "no glasses"), ("bag", "backpack")
    ]
    assert mentions("an empty parking lot at night") == []


def hit(t: float, score: float, video: str = "a.mp4", vector_id: int | None = None) -> Hit:
    item = Item(vector_id=vector_id if vector_id is not None else int(t * 10), kind="frame", frame_index=int(t), t=t)
    return Hit(rank=0, score=score, item=item, video=Path(video))


def test_frame_hits_close_in_time_become_one_moment_at_its_best_frame():
    hits = [hit(0, 0.2), hit(1, 0.5), hit(2, 0.3), hit(5.5, 0.4), hit(9, 0.1), hit(1, 0.45, video="b.mp4")]
    moments = merge_moments(hits, max_gap_s=3.0)
    assert [(m.rank, str(m.video), m.item.t, m.span, m.score) for m in moments] == [
        (1, "a.mp4", 1, (0, 2), 0.5),
        (2, "b.mp4", 1, (1, 1), 0.45),
        (3, "a.mp4", 5.5, (5.5, 5.5), 0.4),  # 3.5 s after the last hit: another moment
        (4, "a.mp4", 9, (9, 9), 0.1),
    ]


def test_moments_split_at_gaps_longer_than_the_limit():
    moments = merge_moments([hit(0, 0.2), hit(1, 0.5), hit(4.5, 0.4), hit(6, 0.3)], max_gap_s=3.0)
    assert [(m.span, m.score) for m in moments] == [((0, 1), 0.5), ((4.5, 6), 0.4)]
    assert merge_moments([hit(0, 0.2), hit(3, 0.1)], max_gap_s=3.0)[0].span == (0, 3)  # the limit is inclusive


def appearance(id_: int, start: float, end: float, red: float) -> StoredAppearance:
    return StoredAppearance(
        id=id_, video=Path("a.mp4"), track=id_, start=start, end=end, detections=5, best_person_id=None,
        attributes={"upper_color": {"red": red, "blue": 1 - red}},
    )


def test_crops_of_one_appearance_become_one_hit_with_the_attribute_bonus():
    from vidsearch.attributes import Mention

    crops = [hit(1, 0.30, vector_id=1), hit(2, 0.32, vector_id=2), hit(7, 0.31, vector_id=3), hit(9, 0.2, vector_id=4)]
    owners = {1: appearance(10, 0, 4, red=0.1), 2: appearance(10, 0, 4, red=0.1), 3: appearance(11, 6, 8, red=0.9)}
    grouped = best_per_appearance(crops, owners, [Mention("upper_color", "red")], attribute_weight=0.1)
    assert [(h.appearance, h.item.vector_id, h.span) for h in grouped] == [(11, 3, (6, 8)), (10, 2, (0, 4)), (None, 4, None)]
    assert grouped[0].score == pytest.approx(0.31 + 0.09) and grouped[1].score == pytest.approx(0.32 + 0.01)
    assert grouped[0].evidence[0].best_label == "red" and grouped[1].evidence[0].best_label == "blue"


@given(st.text(alphabet=st.sampled_from(list('ab -"\t')), max_size=30))
def test_the_query_parser_keeps_words_and_takes_out_excluded_ones(text):
    parsed = parse_query(text)
    kept = parsed.text.split()
    assert all(word in text for word in kept)
    assert all(word == "-" or not word.startswith("-") for word in kept)
    assert all(phrase and phrase == phrase.strip() and phrase in text for phrase in parsed.excluded)
    if "-" not in text:
        assert parsed.text == " ".join(text.split()) and parsed.excluded == ()


def test_hyphenated_words_stay_and_leading_minus_excludes():
    assert parse_query('man in a t-shirt -"red car" -bike') == parse_query("man in a t-shirt", ["red car", "bike"])
    assert parse_query("a - b").text == "a - b"
    # a lone minus is a word; an empty exclusion is none
    assert parse_query("-").text == "-" and parse_query('a -"" b').excluded == ()
