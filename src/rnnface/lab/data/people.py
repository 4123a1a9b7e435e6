"""Who is who across face sets, and who an identity-disjoint model must never see.

Training may draw on several face caches (LFW and CFP): a person is one key across all of them (the name
without case, accents, spaces or punctuation), so that one of the 176 CFP people who are also in LFW is one
class, and is held out of every set when either set's fold holds them out. Fold k is LFW View-2 fold k and
CFP split k + 1; both sets' folds are identity-disjoint.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rnnface.lab.data import cfp
from rnnface.lab.data.lfw import held_out_people
from rnnface.lab.data.prepare import FaceCache


def cfp_root(cache: FaceCache) -> Path | None:
    """The CFP root of a cache made from CFP's `Data/Images`, else None (a folder set such as LFW)."""
    images = Path(cache.meta["data"])
    root = images.parent.parent
    return root if images.name == "Images" and (root / "Protocol" / "Split").is_dir() else None


def person_keys(cache: FaceCache) -> np.ndarray:
    """(N,) the key of each cached face's person (CFP ids resolved to names)."""
    root = cfp_root(cache)
    named = cfp.names(root) if root is not None else {}
    return np.array([cfp.person_key(named.get(r.person, r.person)) for r in cache.rows])


def fold_keys(cache: FaceCache, folds: tuple[int, ...], pairs: str | Path | None = None) -> set[str]:
    """Keys of the people of `folds` (0-9) in this cache's set."""
    if not folds:
        return set()
    root = cfp_root(cache)
    if root is None:
        return {cfp.person_key(p) for p in held_out_people(cache.meta["data"], folds, pairs)}
    named = cfp.names(root)
    return {
        cfp.person_key(named[path.split("/")[0]])
        for protocol in cfp.PROTOCOLS
        for pair in cfp.read_protocol(root, protocol)
        if pair.split in folds
        for path in (pair.a, pair.b)
    }


def profiles(cache: FaceCache) -> np.ndarray:
    """(N,) whether each cached face is a profile photo (CFP's `profile/` folders; none elsewhere)."""
    if cfp_root(cache) is None:
        return np.zeros(len(cache.rows), bool)
    return np.array([r.path.split("/")[1] == "profile" for r in cache.rows])
