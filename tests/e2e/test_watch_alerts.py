"""Alerts: `watch` searches each newly committed video with its standing searches, records matches above the
score in alerts.jsonl, POSTs them to a URL (a receiver on loopback here) and the API lists them."""

from __future__ import annotations

import json
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from shared_files import VIDEOS
from test_watch import Watching, wait_for
from vidsearch.alerts import AlertRule, Alerts
from vidsearch.errors import ConfigError
from vidsearch.events import VideoIndexed

CLIP = VIDEOS / "unit" / "intel_asl_thanks.mkv"


class Receiver:
    """Collects the JSON bodies POSTed to it; shuts down on exit."""

    def __init__(self):
        self.bodies: list[dict] = []
        bodies = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}/alerts"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def __enter__(self) -> Receiver:
        return self

    def __exit__(self, *exc) -> None:
        self.http.shutdown()
        self.http.server_close()


def test_new_videos_raise_alerts_that_are_recorded_posted_and_listed(tmp_path, options):
    from fastapi.testclient import TestClient

    from vidsearch import Archive
    from vidsearch.serve.app import create_app

    folder = tmp_path / "recordings"
    known = folder / "cam1" / "known.mkv"
    known.parent.mkdir(parents=True)
    shutil.copy(CLIP, known)
    with Archive.open(tmp_path / "archive", **options) as archive, Receiver() as receiver:
        archive.ingest([folder], persons=False)
        example = int(archive.catalog.vector_ids("frame")[0])
        rules = [AlertRule.parse("like", f"same-scene={example}"), AlertRule.parse("text", "bus=a red bus")]
        alerts = Alerts(archive, rules, min_score=0.99, url=receiver.url)  # identical pixels score 1.0
        watching = Watching(archive, folder)
        watching.watcher.on_indexed = alerts.check
        with watching:
            again = folder / "cam2" / "again.mkv"
            again.parent.mkdir()
            shutil.copy(CLIP, again)
            wait_for(lambda: watching.of(VideoIndexed, again) and receiver.bodies)
        recorded = [json.loads(line) for line in (tmp_path / "archive" / "alerts.jsonl").read_text().splitlines()]
        assert {a["alert"] for a in recorded} == {"same-scene"}  # random text weights match nothing at 0.99
        assert {a["hit"]["video"] for a in recorded} == {str(again)}
        assert all(a["hit"]["score"] >= 0.99 and a["hit"]["camera"] == "cam2" for a in recorded)
        assert receiver.bodies == [{"alerts": recorded}]
        with TestClient(create_app(archive)) as client:
            assert client.get("/api/alerts").json()["alerts"] == recorded[::-1]


def test_alert_rules_are_checked_when_given():
    for by, given in (("text", "no-equals"), ("like", "x=abc"), ("image", "x=/no/such.jpg"), ("text", "=red")):
        with pytest.raises(ConfigError):
            AlertRule.parse(by, given)
