"""LFW protocol files: View 2 `pairs.txt` (10 person-disjoint folds), View 1 dev pairs, and the people of folds."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rnnface.errors import DataError


@dataclass(frozen=True)
class Pair:
    fold: int
    a: str  # image path relative to the image root, '<Person>/<Person>_NNNN.jpg'
    b: str
    same: bool


def lfw_image(person: str, number: int | str) -> str:
    """Relative path of LFW image `number` (1-based) of `person`."""
    return f"{person}/{person}_{int(number):04d}.jpg"


def read_pairs(path: str | Path) -> list[Pair]:
    """Parse `pairs.txt` (header 'folds n') or a dev file (header 'n': one fold) into Pairs."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: LFW pairs file not found")
    lines = [ln.split() for ln in path.read_text().splitlines() if ln.strip()]
    header = [int(v) for v in lines[0]]
    folds, per_fold = (header[0], header[1]) if len(header) == 2 else (1, header[0])
    body = lines[1:]
    if len(body) != folds * 2 * per_fold:
        raise DataError(f"{path}: expected {folds * 2 * per_fold} pairs after the header, found {len(body)}")
    pairs = []
    for i, fields in enumerate(body):
        fold = i // (2 * per_fold)
        if len(fields) == 3:
            name, n1, n2 = fields
            pairs.append(Pair(fold, lfw_image(name, n1), lfw_image(name, n2), True))
        elif len(fields) == 4:
            name1, n1, name2, n2 = fields
            pairs.append(Pair(fold, lfw_image(name1, n1), lfw_image(name2, n2), False))
        else:
            raise DataError(f"{path}: line {i + 2} is not a pair: {' '.join(fields)!r}")
    return pairs


def pairs_file(data: str | Path, name: str = "pairs.txt") -> Path:
    """Locate a pairs file beside the LFW image folder (`data/pairs.txt` or `data/../pairs.txt`)."""
    data = Path(data)
    for candidate in (data / name, data.parent / name):
        if candidate.is_file():
            return candidate
    raise DataError(f"{name} not found in {data} or its parent; it comes with LFW (http://vis-www.cs.umass.edu/lfw/)")


def fold_people(pairs_path: str | Path, folds: tuple[int, ...] | set[int]) -> set[str]:
    """Everyone who appears in the given View-2 folds."""
    return {path.split("/")[0] for pair in read_pairs(pairs_path) if pair.fold in folds for path in (pair.a, pair.b)}


def held_out_people(
    dataset: str | Path, folds: tuple[int, ...] | set[int], pairs: str | Path | None = None
) -> set[str]:
    """People of the excluded `folds` of the LFW at `dataset` (empty when no fold is excluded): the people an
    identity-disjoint model must never have seen."""
    if not folds:
        return set()
    return fold_people(pairs or pairs_file(dataset), folds)
