"""The web API on a real archive: the `query --json` contract, pictures and video by id, export, and safety
(bounds, path traversal, the token; the bind address, checked before any archive opens, is in
tests/unit/test_serve_binding.py)."""

from __future__ import annotations

import io
import os

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from vidsearch.serve.app import MAX_UPLOAD_BYTES, STATIC, create_app
from vidsearch.thumbnails import THUMB_SIZE

ONE_BY_ONE = "scenes/intel_one-by-one-person-detection.mp4"
THEORA = "unit/iscc_band_176x144.ogv"
# what leaks would look like: the catalog's header, a password file, this package's source
SECRETS = (b"SQLite format 3", b"root:x:0:0", b"create_app")


@pytest.fixture(scope="module")
def client(ingested):
    archive, _, _ = ingested
    with TestClient(create_app(archive)) as client:
        yield client


def first_person(archive, path):
    video = archive.catalog.video(path)
    return next(item for item, _, embedded in archive.catalog.persons_of_video(video.id) if embedded)


def test_search_answers_what_query_json_prints(client, ingested):
    archive, _, _ = ingested
    answer = client.get("/api/search", params={"q": "a person at a table", "k": 7})
    assert answer.status_code == 200
    expected = [hit.to_json() for hit in archive.query("a person at a table", k=7)]
    assert answer.json() == {"query": "a person at a table", "hits": expected}

    narrowed = client.get("/api/search", params={"q": "a person", "k": 5, "video": "one-by-one", "t_min": 20,
                                                 "t_max": 60}).json()["hits"]
    assert narrowed and [h["rank"] for h in narrowed] == list(range(1, len(narrowed) + 1))
    assert all("one-by-one" in h["video"] and 20 <= h["t"] <= 60 for h in narrowed)


def test_hit_details_pictures_and_playable_video(client, ingested):
    archive, root, _ = ingested
    person = first_person(archive, root / ONE_BY_ONE)
    details = client.get(f"/api/hits/{person.vector_id}").json()
    assert details["id"] == person.vector_id and details["box"] == [round(v, 1) for v in person.box.as_list()]
    assert details["media"] == {"url": f"/api/video/{person.vector_id}", "start": 0.0, "transcoded": False}

    thumb = client.get(f"/api/thumb/{person.vector_id}.jpg")
    assert thumb.headers["content-type"] == "image/jpeg"
    assert max(Image.open(io.BytesIO(thumb.content)).size) <= THUMB_SIZE
    assert (archive.folder / "thumbs" / f"{person.vector_id}.jpg").read_bytes() == thumb.content
    frame = client.get(f"/api/frame/{person.vector_id}.jpg")
    assert Image.open(io.BytesIO(frame.content)).size == (768, 432)

    source = (root / ONE_BY_ONE).read_bytes()
    part = client.get(f"/api/video/{person.vector_id}", headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == source[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(source)}"

    # a browser cannot play Theora: the player gets an H.264 clip around the hit, and where it starts
    theora = next(h for h in archive.query("music", k=200, kind="frame") if h.video == root / THEORA)
    media = client.get(f"/api/hits/{theora.item.vector_id}").json()["media"]
    assert media["transcoded"] and media["start"] <= theora.item.t <= media["start"] + 20
    clip = client.get(media["url"])
    assert clip.status_code == 200 and clip.headers["content-type"] == "video/mp4" and clip.content[4:8] == b"ftyp"


def test_like_export_and_unknown_ids(client, ingested):
    archive, root, _ = ingested
    person = first_person(archive, root / ONE_BY_ONE)
    similar = client.get(f"/api/like/{person.vector_id}", params={"k": 3}).json()
    assert similar["query"] == {"like": person.vector_id}
    assert similar["hits"] and all(h["id"] != person.vector_id for h in similar["hits"])

    report = client.post("/api/export", json={"ids": [person.vector_id, 987654], "pad": 0.5}).json()
    assert report["problems"] == ["no hit with id 987654 in this archive"]
    [exported] = report["exported"]
    assert exported["clip"].startswith(str(archive.folder / "exports"))
    downloads = report["downloads"][str(person.vector_id)]
    assert set(downloads) == {"clip", "frame", "crop", "boxes", "evidence"}
    clip = client.get(downloads["clip"])
    assert clip.status_code == 200 and clip.content == open(exported["clip"], "rb").read()
    assert client.get(f"/api/exports/{report['name']}/{person.vector_id}/catalog").status_code == 400
    assert client.get(f"/api/exports/nothing/{person.vector_id}/clip").status_code == 404

    for url in ("/api/hits/987654", "/api/thumb/987654.jpg", "/api/frame/987654.jpg", "/api/video/987654",
                "/api/like/987654"):
        assert client.get(url).status_code == 404, url


@pytest.mark.parametrize(
    "params", [{"q": "x", "k": 0}, {"q": "x", "k": 1001}, {"q": ""}, {"q": "x" * 1001}, {"q": "x", "kind": "spaceship"},
               {"k": 5}, {"q": "x", "t_min": -1}],
)
def test_search_bounds_are_4xx(client, params):
    answer = client.get("/api/search", params=params)
    assert answer.status_code == 400, answer.text


def test_search_kind_takes_a_tracked_class_or_its_family(client):
    cars = client.get("/api/search", params={"q": "a car", "k": 20, "kind": "car"}).json()["hits"]
    vehicles = client.get("/api/search", params={"q": "a car", "k": 20, "kind": "vehicle"}).json()["hits"]
    assert cars and {hit["label"] for hit in cars} == {"car"}
    assert vehicles and {hit["label"] for hit in vehicles} <= {"car", "truck", "bus", "motorcycle", "bicycle"}


def test_uploads_are_bounded_and_checked(client):
    big = client.post("/api/search/image", content=b"\0" * (MAX_UPLOAD_BYTES + 1), headers={"Content-Type": "image/png"})
    assert big.status_code == 413
    assert client.post("/api/search/image", content=b"").status_code == 400
    assert client.post("/api/search/image", content=b"not a picture").status_code == 400
    picture = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(picture, format="PNG")
    found = client.post("/api/search/image", params={"k": 3}, content=picture.getvalue())
    assert found.status_code == 200 and len(found.json()["hits"]) == 3
    assert client.post("/api/export", json={"ids": []}).status_code == 400
    assert client.post("/api/export", json={"ids": [1], "pad": 1000}).status_code == 400


@pytest.mark.parametrize(
    "url",
    [
        "/api/thumb/..%2f..%2fcatalog.sqlite", "/api/thumb/../catalog.sqlite.jpg", "/api/video/%2e%2e%2fcatalog.sqlite",
        "/api/video/..%2F..%2F..%2Fetc%2Fpasswd", "/api/frame/%2Fetc%2Fpasswd.jpg", "/api/video//etc/passwd",
        "/static/..%2f__init__.py", "/static/%2e%2e%2fapp.py", "/static/../app.py", "/static//etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd", "/api/exports/..%2f..%2fcatalog.sqlite/1/clip", "/etc/passwd",
        "/api/hits/1%2f..%2f..%2fcatalog.sqlite",
    ],
)
def test_path_traversal_gets_no_file(client, url):
    answer = client.get(url)
    assert answer.status_code in (400, 404), (url, answer.status_code)
    assert not any(secret in answer.content for secret in SECRETS)


def test_static_files_are_read_once_and_links_are_not_served(tmp_path, ingested):
    archive, _, _ = ingested
    (tmp_path / "index.html").write_bytes((STATIC / "index.html").read_bytes())
    os.symlink("/etc/passwd", tmp_path / "passwd.html")
    os.symlink(archive.folder / "catalog.sqlite", tmp_path / "catalog.js")
    with TestClient(create_app(archive, static=tmp_path)) as client:
        assert client.get("/").status_code == 200 and b"vidsearch" in client.get("/").content
        for name in ("passwd.html", "catalog.js"):
            answer = client.get(f"/static/{name}")
            assert answer.status_code == 404 and not any(secret in answer.content for secret in SECRETS)


def test_with_a_token_every_api_request_needs_it(ingested):
    archive, _, _ = ingested
    with TestClient(create_app(archive, token="s3cret-token")) as client:
        assert client.get("/").status_code == 200  # the page itself holds nothing
        assert client.get("/api/search", params={"q": "a person"}).status_code == 401
        assert client.get("/api/search", params={"q": "a person", "token": "wrong"}).status_code == 401
        assert client.get("/api/search", params={"q": "a person", "token": "s3cret-token"}).status_code == 200
        assert client.get("/api/search", params={"q": "a person"},
                          headers={"X-Vidsearch-Token": "s3cret-token"}).status_code == 200
        assert client.get("/api/search", params={"q": "a person"},
                          headers={"Authorization": "Bearer s3cret-token"}).status_code == 200
        assert client.get("/api/thumb/1.jpg").status_code == 401
