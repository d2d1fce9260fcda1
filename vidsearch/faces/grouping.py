"""People from faces: identities (one per person appearance) grouped across the archive without a number of groups.

Groups stay put as footage arrives: an identity already in a group keeps it; a new one joins the group of its
nearest grouped identity within the threshold; the new identities left over are clustered among themselves by
dlib's Chinese-whispers graph clustering (an edge between two identities closer than the threshold), each cluster
a new group.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..store.faces import StoredIdentity


@dataclass(frozen=True, slots=True)
class Regrouping:
    joined: dict[int, int]  # identity -> the existing group it joins
    new: list[list[int]]  # identities that form a new group together


def regroup(identities: Sequence[StoredIdentity], threshold: float) -> Regrouping:
    grouped = [identity for identity in identities if identity.group is not None]
    loose = [identity for identity in identities if identity.group is None]
    joined: dict[int, int] = {}
    left: list[StoredIdentity] = []
    known = np.stack([identity.pooled for identity in grouped]) if grouped else None
    for identity in loose:
        if known is not None:
            distances = np.linalg.norm(known - identity.pooled, axis=1)
            nearest = int(np.argmin(distances))
            if distances[nearest] <= threshold:
                joined[identity.id] = grouped[nearest].group
                continue
        left.append(identity)
    return Regrouping(joined, _clusters(left, threshold))


def _clusters(identities: list[StoredIdentity], threshold: float) -> list[list[int]]:
    if len(identities) < 2:
        return [[identity.id] for identity in identities]
    import dlib

    labels = dlib.chinese_whispers_clustering(
        [dlib.vector(identity.pooled.astype(np.float64).tolist()) for identity in identities], threshold
    )
    clusters: dict[int, list[int]] = {}
    for identity, label in zip(identities, labels):
        clusters.setdefault(label, []).append(identity.id)
    return sorted(clusters.values())  # by their first identity: new groups are numbered in the order faces came
