"""The JSON API and the page, a thin FastAPI adapter over one loaded Archive.

Files leave only by a hit id looked up in the catalog (thumbnails, frames, video) or by an export this server
made; no request path ever names a file. The page's own files are read into memory when the app is made,
regular files only, so a link placed in the static folder later, or now, serves nothing.
"""

from __future__ import annotations

import datetime
import hmac
import math
import os
import tempfile
import threading
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from ..alerts import recent_alerts
from ..clock import clock_filter
from ..errors import DecodeError, NotFoundError, VidsearchError
from ..search import SearchFilter
from ..services.speech import FUSION
from .responses import Exported, FaceGroups, FaceHits, HitDetails, Hits

STATIC = Path(__file__).parent / "static"
MAX_K = 1000
MAX_QUERY_CHARS = 1000
MAX_UPLOAD_BYTES = 10 * 2**20
MAX_EXPORT_HITS = 100
PLAYER_PAD_S = 10.0  # a transcoded clip covers this much before and after the hit
ExportFile = Literal["clip", "frame", "crop", "boxes", "evidence"]
# all, frame, or a family or class of tracked things (person, vehicle, car...), or speech in a search; another word is
# answered 400
KindParam = Annotated[str, Query(max_length=64, pattern=r"^[a-z][a-z ]*$")]


class FaceName(BaseModel):
    name: str = Field(min_length=1, max_length=200, pattern=r"\S", description="The person's name.")


class ExportRequest(BaseModel):
    ids: list[int] = Field(min_length=1, max_length=MAX_EXPORT_HITS, description="Hit ids from search results.")
    pad: float = Field(3.0, ge=0, le=60, description="Seconds of video before and after each hit.")
    query: str | None = Field(None, max_length=MAX_QUERY_CHARS, description="The query, for the evidence records.")


def create_app(archive, *, token: str | None = None, static: Path = STATIC) -> FastAPI:
    """The app over an open Archive; with `token`, every /api request must carry it."""
    app = FastAPI(
        title="vidsearch",
        summary="Semantic search over a folder of video: the API behind the page.",
        description="With a token, send it as `Authorization: Bearer TOKEN`, `X-Vidsearch-Token` or `?token=`.",
    )
    page_files = _read_static(static)
    searching = threading.Lock()  # one search at a time through the model and the indexes
    cutting = threading.Lock()  # one transcode at a time: the player asks for the same clip in parallel
    exports: dict[str, object] = {}  # export name -> ExportReport, the exports this server made

    def authorized(request: Request) -> None:
        if token is None:
            return
        bearer = request.headers.get("authorization", "")
        given = (
            request.headers.get("x-vidsearch-token")
            or (bearer[7:] if bearer.lower().startswith("bearer ") else None)
            or request.query_params.get("token")
        )
        if not given or not hmac.compare_digest(given.encode(), token.encode()):
            raise HTTPException(401, "this server needs its token")

    api = APIRouter(prefix="/api", dependencies=[Depends(authorized)])

    def described(hit_id: int):
        try:
            return archive.describe(hit_id)
        except NotFoundError:
            raise HTTPException(404, f"no hit with id {hit_id}") from None

    @api.get("/search", summary="Hits for a text query and/or words said, as `vidsearch query --json` prints them")
    def search(
        q: str | None = Query(None, min_length=1, max_length=MAX_QUERY_CHARS, description="What to find, in plain words."),
        said: str | None = Query(
            None, min_length=1, max_length=MAX_QUERY_CHARS, description='Words and "phrases" spoken in the video.'
        ),
        within: float | None = Query(None, ge=0, description="With q and said: picture hits with the words this near."),
        tolerant: bool = Query(False, description="said also finds words alike in letters or sound."),
        k: int = Query(20, ge=1, le=MAX_K),
        kind: KindParam = "all",
        video: str | None = Query(None, max_length=MAX_QUERY_CHARS, description="Only videos whose path has this."),
        t_min: float | None = Query(None, ge=0, description="Only hits at or after this many seconds."),
        t_max: float | None = Query(None, ge=0, description="Only hits at or before this many seconds."),
        camera: list[str] = Query([], max_length=100, description="Only these cameras (globs); repeatable."),
        after: str | None = Query(None, max_length=40, description="Only hits at or after this ISO date or time."),
        before: str | None = Query(None, max_length=40, description="Only hits before this ISO date or time."),
        hours: str | None = Query(None, max_length=20, description="Only hits at this time of day: 22:00-06:00."),
        tz: str | None = Query(None, max_length=64, description="IANA zone of after, before and hours."),
        text_on_screen: str | None = Query(
            None, max_length=MAX_QUERY_CHARS, description="Only hits where this text is read on screen (ingest --ocr)."
        ),
    ) -> Hits:
        # a name typed in the page's filter box matches anywhere in the path
        where = SearchFilter(
            videos=f"*{video}*" if video else None, start=t_min, end=t_max, cameras=tuple(camera),
            **clock_filter(after, before, hours, tz), screen_text=text_on_screen,
        )
        if kind == "speech" and said is None:
            q, said = None, q
        if q is None and said is None:
            raise HTTPException(400, "give q, said or both")
        with searching:
            if said is not None:
                hits = archive.query_said(q, said, k=k, kind=kind, within=within, tolerant=tolerant, where=where)
            elif kind == "speech":
                raise HTTPException(400, "kind=speech needs q or said")
            else:
                hits = archive.query(q, k=k, kind=kind, where=where)
            left_out = {"left_out_without_time": archive.left_out_without_clock(where)} if where.clocked else {}
        spoken = {"said": said, **({"fusion": FUSION} if q is not None and within is None else {})} if said else {}
        return {"query": q, **spoken, "hits": _json(hits), **left_out}

    @api.get("/alerts", summary="The latest alerts that `watch --alert` raised, newest first")
    def alerts(limit: int = Query(50, ge=1, le=MAX_K)) -> dict:
        return {"alerts": recent_alerts(archive.folder, limit)}

    @api.get("/like/{hit_id}", summary="More like a hit (its id), without the hit itself")
    def like(hit_id: int, k: int = Query(20, ge=1, le=MAX_K), kind: KindParam = "all") -> Hits:
        described(hit_id)
        with searching:
            hits = archive.query_like(hit_id, k=k, kind=kind)
        return {"query": {"like": hit_id}, "hits": _json(hits)}

    @api.post(
        "/search/image",
        summary="Hits that look like a picture: the request body is the image file",
        openapi_extra={"requestBody": {"content": {"image/*": {"schema": {"type": "string", "format": "binary"}}}}},
    )
    async def search_image(request: Request, k: int = Query(20, ge=1, le=MAX_K), kind: KindParam = "all") -> Hits:
        with tempfile.TemporaryDirectory() as folder:
            picture = await _upload(request, Path(folder) / "upload")
            hits = await run_in_threadpool(search_picture, picture, k, kind)
        return {"query": {"image": "upload"}, "hits": _json(hits)}

    def search_picture(picture: Path, k: int, kind: str) -> list:
        with searching:
            return archive.query_image(picture, k=k, kind=kind)

    @api.get("/hits/{hit_id}", summary="One hit: where and when, its appearance and attributes, its media")
    def hit(hit_id: int) -> HitDetails:
        details = described(hit_id).to_json()
        with cutting:
            playable = archive.playable_video(hit_id, pad=PLAYER_PAD_S)
        return {
            **details,
            "thumb": f"/api/thumb/{hit_id}.jpg",
            "frame": f"/api/frame/{hit_id}.jpg",
            # `start`: the source time at the video's time 0, so the hit is at t - start in the player
            "media": {"url": f"/api/video/{hit_id}", "start": playable.start, "transcoded": playable.transcoded},
        }

    @api.get(
        "/subtitles/{hit_id}.vtt", summary="What was said in a hit's video, as WebVTT in the player's time",
        response_class=Response,
    )
    def subtitles(hit_id: int) -> Response:
        found = described(hit_id)
        with cutting:
            playable = archive.playable_video(hit_id, pad=PLAYER_PAD_S)
        end = playable.start + 2 * PLAYER_PAD_S if playable.transcoded else math.inf
        return Response(archive.subtitles(found.video, playable.start, end), media_type="text/vtt")

    @api.get("/thumb/{hit_id}.jpg", summary="A hit's thumbnail: the person's crop, or the frame", response_class=Response)
    def thumb(hit_id: int) -> FileResponse:
        described(hit_id)
        return _picture(archive.thumbnail(hit_id))

    @api.get("/frame/{hit_id}.jpg", summary="A hit's whole frame", response_class=Response)
    def frame(hit_id: int) -> FileResponse:
        described(hit_id)
        return _picture(archive.frame_picture(hit_id))

    @api.get(
        "/video/{hit_id}", summary="Video to play a hit: the source (HTTP ranges), or a transcoded clip around it",
        response_class=Response,
    )
    def video(hit_id: int) -> FileResponse:
        described(hit_id)
        with cutting:
            playable = archive.playable_video(hit_id, pad=PLAYER_PAD_S)
        return FileResponse(playable.path, media_type=playable.media_type, content_disposition_type="inline")

    @api.post("/export", summary="Export hits (clip, pictures, evidence) into the archive's exports/ folder")
    def export(request: ExportRequest) -> Exported:
        name = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        report = archive.export(request.ids, archive.folder / "exports" / name, pad=request.pad, query=request.query)
        exports[name] = report
        return {
            **report.to_json(),
            "name": name,
            "downloads": {
                str(e.id): {role: f"/api/exports/{name}/{e.id}/{role}" for role in e.files} for e in report.exported
            },
        }

    @api.get(
        "/exports/{name}/{hit_id}/{role}", summary="A file of an export this server made", response_class=Response
    )
    def exported_file(name: str, hit_id: int, role: ExportFile) -> FileResponse:
        report = exports.get(name)
        files = next((e.files for e in report.exported if e.id == hit_id), {}) if report else {}
        if role not in files:
            raise HTTPException(404, "no such exported file")
        return FileResponse(files[role], filename=f"hit-{hit_id}-{files[role].name}")

    app.include_router(api)
    app.include_router(face_routes(archive, authorized, searching))

    @app.get("/", include_in_schema=False)
    def page() -> Response:
        return _static(page_files, "index.html")

    @app.get("/static/{name}", include_in_schema=False)
    def static_file(name: str) -> Response:
        return _static(page_files, name)

    @app.exception_handler(RequestValidationError)
    async def bad_request(_request: Request, error: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": error.errors()}, status_code=400)

    @app.exception_handler(VidsearchError)
    async def refused(_request: Request, error: VidsearchError) -> JSONResponse:
        # a source that is gone, or an id naming nothing, is a missing resource; anything else is a request the
        # archive cannot answer
        missing = isinstance(error, (DecodeError, NotFoundError))
        return JSONResponse({"detail": str(error)}, status_code=404 if missing else 400)

    return app


async def _upload(request: Request, path: Path) -> Path:
    """The request body (a picture of at most MAX_UPLOAD_BYTES) written to `path`."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_UPLOAD_BYTES:
        raise HTTPException(413, f"the picture is over {MAX_UPLOAD_BYTES // 2**20} MB")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_UPLOAD_BYTES:
            raise HTTPException(413, f"the picture is over {MAX_UPLOAD_BYTES // 2**20} MB")
    if not body:
        raise HTTPException(400, "send the picture as the request body")
    path.write_bytes(body)
    return path


def face_routes(archive, authorized, searching) -> APIRouter:
    """The face filter and the people view: search by an uploaded or an indexed face, people and their names."""
    faces = APIRouter(prefix="/api/faces", dependencies=[Depends(authorized)])

    @faces.post(
        "/search", summary="Appearances of the person whose face is the picture's largest: the body is the image",
        openapi_extra={"requestBody": {"content": {"image/*": {"schema": {"type": "string", "format": "binary"}}}}},
    )
    async def search_face(request: Request, k: int = Query(20, ge=1, le=MAX_K)) -> FaceHits:
        with tempfile.TemporaryDirectory() as folder:
            picture = await _upload(request, Path(folder) / "upload")
            hits = await run_in_threadpool(search, picture, k)
        return {"query": {"face": "upload"}, "hits": _json(hits)}

    def search(picture: Path, k: int) -> list:
        with searching:
            return archive.query_face(picture, k=k)

    @faces.get("/like/{face_id}", summary="Where else the person of a face hit appears")
    def like_face(face_id: int, k: int = Query(20, ge=1, le=MAX_K)) -> FaceHits:
        with searching:
            return {"query": {"like_face": face_id}, "hits": _json(archive.query_like_face(face_id, k=k))}

    @faces.get("/groups", summary="The people in the archive's faces, largest first")
    def groups() -> FaceGroups:
        return {"groups": [group.to_json() for group in archive.face_groups()]}

    @faces.get("/groups/{group}/hits", summary="The appearances of one person (a group), each at its clearest face")
    def group_hits(group: int, k: int = Query(20, ge=1, le=MAX_K)) -> FaceHits:
        with searching:
            return {"query": {"group": group}, "hits": _json(archive.query_face_group(group, k=k))}

    @faces.post("/groups/{group}/name", summary="Name a person (a group), for `query --who`")
    def name_group(group: int, naming: FaceName) -> dict:
        archive.name_face_group(group, naming.name)
        return {"group": group, "name": naming.name.strip()}

    @faces.get("/thumb/{face_id}.jpg", summary="A face's thumbnail", response_class=Response)
    def face_thumb(face_id: int) -> FileResponse:
        return _picture(archive.face_thumbnail(face_id))

    return faces


def _json(hits: list) -> list[dict]:
    return [hit.to_json() for hit in hits]


def _picture(path: Path) -> FileResponse:
    # vector ids are never reused, so a hit's picture never changes
    return FileResponse(path, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=86400"})


_STATIC_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript", ".css": "text/css"}


def _read_static(folder: Path) -> dict[str, bytes]:
    """The page's files by name: regular files directly in `folder`, never a link."""
    files = {}
    for entry in os.scandir(folder):
        if entry.is_file(follow_symlinks=False) and Path(entry.name).suffix in _STATIC_TYPES:
            files[entry.name] = Path(entry.path).read_bytes()
    return files


def _static(files: dict[str, bytes], name: str) -> Response:
    if name not in files:
        raise HTTPException(404, "not found")
    return Response(files[name], media_type=_STATIC_TYPES[Path(name).suffix])
