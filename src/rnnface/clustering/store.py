"""Unnamed groups kept in a gallery: new faces join them (or found new ones) without reclustering, and a group
becomes a person only when someone names it.

A gallery's people and its unnamed groups (`unknown #k`) seed the clustering as fixed groups, never merged
with one another (only the groups near the new faces: see `neighbourhood`); the new faces are then linked as
`Clustering.add` does. A new face that ends up in an unnamed group is stored there; one that ends up with a
named person is reported, not stored (nothing is enrolled into a person without a person's say); a new group
of at least `min_size` new faces is stored as the next `unknown #k`; the rest are left alone and not stored.
A stored face that is someone else can be split off into a group of its own. `identify` then answers
`unknown #k` for a face that matches a kept group, as for a person.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import cast

import numpy as np

from rnnface.clustering.linkage import DEFAULT_K, Clustering, Pooling
from rnnface.clustering.photos import MIN_SIZE, FoundFace
from rnnface.errors import GalleryError
from rnnface.gallery.base import Gallery
from rnnface.gallery.records import (
    UNNAMED,
    FaceRecord,
    GroupName,
    NewGroup,
    StoredFace,
    check_person_name,
    is_unnamed,
    no_such_person,
    unnamed_number,
)
from rnnface.operating import Threshold


@dataclass(frozen=True)
class Placed:
    """Where one new face went: the person or unnamed group it joined (None: left alone), and whether it was
    stored in the gallery."""

    face: FoundFace
    group: GroupName | None  # a NewGroup only until it is stored and named
    stored: bool
    new_group: bool = False
    face_id: int | None = None  # its id in the gallery, when stored (to split it off later)

    def to_dict(self) -> dict:
        return {
            **self.face.to_dict(),
            "group": self.group,
            "stored": self.stored,
            "new_group": self.new_group,
            "face_id": self.face_id,
        }


def next_unnamed(gallery: Gallery) -> int:
    """The number the next unnamed group gets: one above the highest in the gallery."""
    return 1 + max((unnamed_number(p.name) or 0 for p in gallery.people()), default=0)


def keep_groups(
    gallery: Gallery,
    model_id: str,
    faces: list[FoundFace],
    threshold: Threshold,
    min_size: int = MIN_SIZE,
    k: int = DEFAULT_K,
    pooling: Pooling | None = None,
) -> list[Placed]:
    """Place new `faces` among the gallery's people and unnamed groups, storing what joins or founds an unnamed
    group, all in one transaction."""
    gallery.check_model(model_id)
    clustering = Clustering(threshold.value, k, pooling)
    if not faces:
        return []
    embeddings = np.stack([f.embedding for f in faces])
    stored = neighbourhood(gallery, embeddings, k)
    seeded: dict[object, int] = {}
    if stored:
        seeded = clustering.seed(np.stack([f.embedding for f in stored]), np.array([f.person for f in stored]))
    name_of: dict[int, GroupName] = {g: cast(str, name) for name, g in seeded.items()}  # seeded by person names
    labels = clustering.add(embeddings)
    sizes = np.unique(labels, return_counts=True)
    new_count = dict(zip(sizes[0].tolist(), sizes[1].tolist()))
    for key, group in enumerate(sorted(set(labels.tolist()) - set(name_of), key=lambda g: (-new_count[g], g))):
        if new_count[group] >= min_size:
            name_of[group] = NewGroup(key)  # numbered by the write that stores it
    placed: list[Placed] = []
    batch: dict[GroupName, list[int]] = {}
    for i, (face, group) in enumerate(zip(faces, labels.tolist())):
        name = name_of.get(group)
        store = isinstance(name, NewGroup) or (name is not None and is_unnamed(name))
        placed.append(Placed(face, name, store, store and not clustering.is_fixed(group)))
        if store:
            assert name is not None  # stored faces go to a group
            batch.setdefault(name, []).append(i)
    records = [
        (name, [FaceRecord(faces[i].embedding, faces[i].source, tuple(faces[i].face.box)) for i in rows])
        for name, rows in batch.items()
    ]
    enrolled = gallery.enroll_many(records, model_id) if batch else []
    for (name, rows), new_ids in zip(batch.items(), enrolled):
        label = gallery.faces_by_id(new_ids[:1])[0].person if isinstance(name, NewGroup) and new_ids else name
        for i in rows:
            placed[i] = replace(placed[i], group=label)
        if len(new_ids) == len(rows):  # else some were near-copies of stored faces, and not stored again
            for i, face_id in zip(rows, new_ids):
                placed[i] = replace(placed[i], face_id=face_id)
    return placed


def neighbourhood(gallery: Gallery, embeddings: np.ndarray, k: int = DEFAULT_K) -> list[StoredFace]:
    """Every stored face of each person or group that owns one of the k faces nearest some new face.

    The k-NN graph links a new face only with its k nearest faces, and stored groups never merge with each
    other, so these groups (whole, for their exact sums) are all the new faces can meet: seeding with them
    places the new faces as seeding with the whole gallery would, reading a few groups instead of all faces."""
    if not len(gallery):
        return []
    owners = {m.person for row in gallery.search(embeddings, top_k=k) for m in row}
    return [f for person in sorted(owners) for f in gallery.faces(person)]


def name_group(gallery: Gallery, group: str, target: str) -> int:
    """Give every face of unnamed group `group` ("unknown #k" or k) to `target`: a person's name (created, or joined
    when enrolled), or another group's number (the two groups are one person). Returns the faces moved."""
    label, into = unnamed_label(group), group_target(target)
    present = {p.name for p in gallery.people()}
    for who in (label, into) if target.isdigit() else (label,):
        if who not in present:
            raise no_such_person(gallery.location, who)
    return gallery.rename(label, into)


def split_face(gallery: Gallery, face_id: int) -> tuple[str, str]:
    """Take one stored face out of its person or group into a new unnamed group of its own (it was someone
    else); returns (who it was with, the new group). The face stays stored: name the new group, or remove it."""
    (face,) = gallery.faces_by_id([face_id])
    if sum(1 for _ in gallery.faces(face.person)) == 1:
        raise GalleryError(f"face {face_id} is the only face of {face.person!r}: there is nothing to split it from")
    return face.person, gallery.move_to_new_group([face_id])  # numbered inside the write


def group_target(target: str) -> str:
    """What a group is given to: another group ("unknown #k" for a number k), else a person's name."""
    return unnamed_label(target) if target.isdigit() else check_person_name(target)


def unnamed_label(group: str) -> str:
    """ "unknown #k" for "k" or "unknown #k"; GalleryError for anything else."""
    label = UNNAMED.format(group) if str(group).isdigit() else str(group)
    if not is_unnamed(label):
        raise GalleryError(f"{group!r} is not an unnamed group: give its number k or 'unknown #k'")
    return label
