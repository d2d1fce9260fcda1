"""The tracked classes and their families: which detector classes are followed into appearances, how each family is
tracked (its own speeds), which attribute vocabulary reads it, and what a query's `--kind` names.

A family groups classes the detector confuses with each other (a van is a car in one frame and a truck in the
next), so one track follows a vehicle whatever its label says, and the appearance takes its most frequent label.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from .attributes import Vocabulary, load_vocabulary
from .config import Settings, TrackConfig
from .errors import ConfigError

PERSON = "person"


@dataclass(frozen=True, slots=True)
class Family:
    name: str
    classes: tuple[str, ...]  # the tracked classes of this family
    track: TrackConfig
    attributes: str | None  # the vocabulary shipped in vidsearch/configs under this name; None: no attributes
    attributes_file: Path | None = None  # a user's vocabulary, read instead of the shipped one


@dataclass(frozen=True, slots=True)
class KindChoice:
    """What `--kind` asks for: which vector kinds to search, and of crops only those of some classes."""

    kinds: tuple[str, ...]
    labels: frozenset[str] | None  # None: every class


def families(settings: Settings, tracked: tuple[str, ...] | None = None) -> dict[str, Family]:
    """The families of the tracked classes (`tracked`, else the detector's labels), by name. A tracked class no
    family lists is a family of its own, tracked as persons are and read for no attributes."""
    tracked = settings.detector.labels if tracked is None else tracked
    configured = settings.things.families
    found: dict[str, Family] = {}
    for label in tracked:
        name = next((n for n, spec in configured.items() if label in spec.get("classes", ())), label)
        spec = configured.get(name, {})
        unknown = set(spec) - {"classes", "attributes", "track"}
        if unknown:
            raise ConfigError(f"things.families.{name}: unknown keys {sorted(unknown)}")
        try:
            track = replace(settings.track, **spec.get("track", {}))
        except TypeError as error:
            raise ConfigError(f"things.families.{name}.track: {error}") from None
        attributes = spec.get("attributes")
        user_file = settings.search.attributes if name == PERSON else None
        if attributes and ("/" in attributes or "\\" in attributes):
            attributes, user_file = None, attributes
        previous = found.get(name)
        classes = (previous.classes if previous else ()) + (label,)
        found[name] = Family(name, classes, track, attributes, Path(user_file) if user_file else None)
    return found


def every_family(settings: Settings) -> dict[str, Family]:
    """The families of every class the settings name, tracked now or not: an archive may hold tracks of classes
    that another call tracked (`ingest --track`, `retrack`)."""
    named = [label for spec in settings.things.families.values() for label in spec.get("classes", ())]
    return families(settings, tuple(dict.fromkeys([*settings.detector.labels, *named])))


def family_of(label: str, found: dict[str, Family]) -> Family | None:
    return next((family for family in found.values() if label in family.classes), None)


def kind_choice(kind: str, settings: Settings) -> KindChoice:
    """`all`, `frame`, a family (`vehicle`, `person`) or a class (`car`); anything else is a ConfigError naming
    the choices."""
    if kind == "all":
        return KindChoice(("frame", "person"), None)
    if kind == "frame":
        return KindChoice(("frame",), None)
    named = {name: set(spec.get("classes", ())) for name, spec in settings.things.families.items()}
    named.setdefault(PERSON, {PERSON})
    classes = set().union(*named.values(), settings.detector.labels)
    if kind in named:
        return KindChoice(("person",), frozenset(named[kind]))
    if kind in classes:
        return KindChoice(("person",), frozenset({kind}))
    choices = ["all", "frame", *sorted(named), *sorted(classes - set(named))]
    raise ConfigError(f"--kind {kind!r}: expected one of {', '.join(choices)}")


def tracked_option(text: str) -> tuple[str, ...]:
    """`--track person,car,bus` as a tuple of class names."""
    labels = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    if not labels:
        raise ConfigError("--track needs at least one class name")
    return labels


def family_vocabulary(family: Family) -> Vocabulary | None:
    """The attribute vocabulary a family is read with; None for a family without one."""
    if family.attributes_file is not None:
        return load_vocabulary(family.attributes_file)
    return load_vocabulary(None, family.attributes) if family.attributes else None


def query_vocabulary(tracked: dict[str, Family]) -> Vocabulary:
    """Every tracked family's groups in one vocabulary: what a query's words may name (group names differ between
    families' vocabularies, so each appearance answers only for its own)."""
    vocabularies = [v for family in tracked.values() if (v := family_vocabulary(family)) is not None]
    return Vocabulary(tuple(group for vocabulary in vocabularies for group in vocabulary.groups))
