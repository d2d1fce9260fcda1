"""Attributes of persons read with CLIP from a vocabulary of prompt ensembles, kept as probabilities: the evidence
a person hit shows for what the query asked ("red jacket": upper_color red 0.81)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ConfigError
from .records import AttributeMatch
from .text_encoder import prompt_vectors


@dataclass(frozen=True, slots=True)
class Label:
    name: str
    prompts: tuple[str, ...]
    mentioned_by: re.Pattern | None  # how a query names this label


# groups measured from a track's boxes rather than read with CLIP (`from: track` in a vocabulary)
TRACK_MEASURES = ("direction",)


@dataclass(frozen=True, slots=True)
class Group:
    name: str
    labels: tuple[Label, ...]
    from_track: bool = False  # measured from the track (TRACK_MEASURES), not read from the crops


@dataclass(frozen=True, slots=True)
class Mention:
    group: str
    label: str


@dataclass(frozen=True, slots=True)
class Vocabulary:
    groups: tuple[Group, ...]

    def mentions(self, text: str) -> list[Mention]:
        """The labels a query names, at most one per group (the first named)."""
        found = []
        for group in self.groups:
            named = [
                (match.start(), label.name)
                for label in group.labels
                if label.mentioned_by and (match := label.mentioned_by.search(text))
            ]
            if named:
                found.append(Mention(group.name, min(named)[1]))
        return found


def load_vocabulary(path: Path | None = None, shipped: str = "attributes.yaml") -> Vocabulary:
    """A user's vocabulary file, or else the shipped one named `shipped`; mistakes are named with their place."""
    import yaml

    where = str(path) if path else shipped
    try:
        text = Path(path).read_text(encoding="utf-8") if path else (
            resources.files("vidsearch.configs").joinpath(shipped).read_text(encoding="utf-8")
        )
        raw = yaml.safe_load(text)
    except OSError as error:
        raise ConfigError(f"{where}: cannot read: {error.strerror or error}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{where}: not valid YAML: {error}".replace("\n", " ")) from None
    return _parse(raw, where)


def _parse(raw: Any, where: str) -> Vocabulary:
    def fail(at: str, what: str):
        raise ConfigError(f"{where}: {at}: {what}")

    if not isinstance(raw, dict) or raw.get("version") != 1:
        fail("version", "expected a mapping with version: 1")
    groups_raw = raw.get("groups")
    if not isinstance(groups_raw, dict) or not groups_raw:
        fail("groups", "expected a mapping of groups")
    groups = []
    for group_name, spec in groups_raw.items():
        at = f"groups.{group_name}"
        if not isinstance(spec, dict):
            fail(at, "expected a mapping with labels")
        unknown = set(spec) - {"prompts", "labels", "mentioned_by", "from"}
        if unknown:
            fail(at, f"unknown keys {sorted(unknown)}")
        from_track = spec.get("from") == "track"
        if "from" in spec and (not from_track or group_name not in TRACK_MEASURES):
            fail(f"{at}.from", f"only {', '.join(TRACK_MEASURES)} can be from: track")
        templates = spec.get("prompts", [])
        if not isinstance(templates, list) or not all(isinstance(t, str) and "{label}" in t for t in templates):
            fail(f"{at}.prompts", "expected a list of phrasings, each with {label}")
        labels_raw = spec.get("labels")
        if isinstance(labels_raw, list):
            if not templates and not from_track:
                fail(f"{at}.prompts", "plain-word labels need prompt templates")
            labels_raw = {name: {} for name in labels_raw}
        if not isinstance(labels_raw, dict) or len(labels_raw) < 2:
            fail(f"{at}.labels", "expected at least two labels: probabilities are shared within a group")
        labels = []
        for name, label_spec in labels_raw.items():
            label_at = f"{at}.labels.{name}"
            if not isinstance(name, str) or not name.strip():
                fail(label_at, "a label needs a name")
            if not isinstance(label_spec, dict) or set(label_spec) - {"prompts", "mentioned_by"}:
                fail(label_at, "expected a word, or a mapping with prompts and mentioned_by")
            prompts = label_spec.get("prompts") or [t.replace("{label}", name) for t in templates]
            if not isinstance(prompts, list) or not all(isinstance(p, str) and p.strip() for p in prompts):
                fail(f"{label_at}.prompts", "expected a list of phrasings")
            if from_track and prompts:
                fail(f"{label_at}.prompts", "a group measured from the track has no phrasings")
            pattern = label_spec.get("mentioned_by", spec.get("mentioned_by"))
            labels.append(Label(name, tuple(prompts), _pattern(pattern, name, label_at, fail)))
        groups.append(Group(group_name, tuple(labels), from_track))
    return Vocabulary(tuple(groups))


def _pattern(pattern: Any, name: str, at: str, fail) -> re.Pattern | None:
    if pattern is None:
        return None
    if not isinstance(pattern, str):
        fail(f"{at}.mentioned_by", "expected a regular expression")
    try:
        return re.compile(pattern.replace("{label}", re.escape(name)), re.IGNORECASE)
    except re.error as error:
        fail(f"{at}.mentioned_by", f"bad regular expression: {error}")


class AttributeReader:
    """The vocabulary's labels embedded once under one CLIP model; reads probabilities from person embeddings."""

    def __init__(self, vocabulary: Vocabulary, embedder):
        self.vocabulary = vocabulary
        self.groups = [group for group in vocabulary.groups if not group.from_track]
        prompts = [p for g in self.groups for label in g.labels for p in label.prompts]
        # the prompts' own vectors, in the vocabulary's order
        self.prompt_vectors = (
            prompt_vectors().get(embedder.identity, embedder.text_precision, prompts, embedder.embed_texts)
            if prompts else np.zeros((0, embedder.identity.dim), np.float32)
        )
        embedded = iter(self.prompt_vectors)
        self.label_vectors = []  # per group: labels x dim
        for group in self.groups:
            rows = []
            for label in group.labels:
                mean = np.mean([next(embedded) for _ in label.prompts], axis=0)
                rows.append(mean / max(float(np.linalg.norm(mean)), 1e-12))
            self.label_vectors.append(np.stack(rows))
        self.logit_scale = embedder.logit_scale

    def read(self, vectors: np.ndarray) -> list[dict[str, dict[str, float]]]:
        """Per pooled embedding (a row of `vectors`): group -> label -> probability, for the groups read with CLIP."""
        per_group = []
        for group, labels in zip(self.groups, self.label_vectors):
            logits = self.logit_scale * (vectors @ labels.T)
            logits -= logits.max(axis=1, keepdims=True)
            odds = np.exp(logits)
            per_group.append(odds / odds.sum(axis=1, keepdims=True))
        return [
            {
                group.name: {label.name: float(p) for label, p in zip(group.labels, probs[row])}
                for group, probs in zip(self.groups, per_group)
            }
            for row in range(len(vectors))
        ]


def evidence(attributes: dict[str, dict[str, float]], mentions: list[Mention]) -> tuple[AttributeMatch, ...]:
    """How a person's attributes answer the labels a query names (groups it was not read for are left out)."""
    matches = []
    for mention in mentions:
        group = attributes.get(mention.group)
        if not group or mention.label not in group:
            continue
        best = max(group, key=group.get)
        matches.append(AttributeMatch(mention.group, mention.label, group[mention.label], best, group[best]))
    return tuple(matches)
