"""Alerts: standing searches run over each newly committed video; matches above a score are appended to
`alerts.jsonl` in the archive folder and, where a URL is given, POSTed to it as JSON."""

from __future__ import annotations

import glob
import json
import logging
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from .errors import ConfigError
from .search import SearchFilter

log = logging.getLogger("vidsearch")

ALERTS_FILE = "alerts.jsonl"
_POST_TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True)
class AlertRule:
    """A named standing search: by text, by a picture (a file) or like an indexed hit (an id)."""

    name: str
    by: str  # "text", "image" or "like"
    value: str

    @classmethod
    def parse(cls, by: str, given: str) -> AlertRule:
        """From NAME=VALUE as the command line takes it."""
        name, equals, value = given.partition("=")
        if not equals or not name.strip() or not value.strip():
            raise ConfigError(f"an alert is NAME=VALUE, not {given!r}")
        if by == "like" and not value.strip().isdigit():
            raise ConfigError(f"alert {name}: --alert-like takes a hit id, not {value!r}")
        if by == "image" and not Path(value).is_file():
            raise ConfigError(f"alert {name}: no picture at {value}")
        return cls(name.strip(), by, value.strip())


class Alerts:
    """Runs `rules` over new videos of an archive; hits scoring at least `min_score` are alerts."""

    def __init__(self, archive, rules: Sequence[AlertRule], min_score: float, url: str | None = None, k: int = 10):
        self.archive = archive
        self.rules = list(rules)
        self.min_score = min_score
        self.url = url
        self.k = k
        self.file = Path(archive.folder) / ALERTS_FILE

    def check(self, videos: Sequence[Path]) -> list[dict]:
        """Search each video with every rule; returns the alerts raised, after recording and sending them."""
        raised = []
        for video in videos:
            where = SearchFilter(videos=glob.escape(str(video)), min_score=self.min_score)
            for rule in self.rules:
                for hit in self._search(rule, where):
                    raised.append({
                        "alert": rule.name, "by": rule.by, "query": rule.value,
                        "raised_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "hit": hit.to_json(),
                    })
        if raised:
            with open(self.file, "a", encoding="utf-8") as out:
                out.writelines(json.dumps(alert) + "\n" for alert in raised)
            if self.url:
                self._post(raised)
        return raised

    def _search(self, rule: AlertRule, where: SearchFilter):
        if rule.by == "text":
            return self.archive.query(rule.value, k=self.k, where=where)
        if rule.by == "image":
            return self.archive.query_image(Path(rule.value), k=self.k, where=where)
        return self.archive.query_like(int(rule.value), k=self.k, where=where)

    def _post(self, alerts: list[dict]) -> None:
        request = urllib.request.Request(
            self.url, data=json.dumps({"alerts": alerts}).encode(), headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=_POST_TIMEOUT_S):
                pass
        except OSError as error:  # the receiver is down: the alerts stay in alerts.jsonl
            log.warning("alerts not sent to %s: %s", self.url, error)


def recent_alerts(folder: Path, limit: int) -> list[dict]:
    """The last `limit` alerts recorded in an archive folder, newest first."""
    path = Path(folder) / ALERTS_FILE
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()[-limit:]
    return [json.loads(line) for line in reversed(lines) if line.strip()]
