"""Celebrities in Frontal-Profile (CFP; Sengupta et al., WACV 2016): its photos and its official protocol.

`<root>/Data/Images/<id>/{frontal,profile}/NN.jpg` holds 10 frontal and 4 profile photos of each of 500
people; `Protocol/Pair_list_{F,P}.txt` number the frontal and profile photos, and `Protocol/Split/{FF,FP}/NN/`
lists 350 same and 350 different pairs per split (FF: frontal with frontal, FP: frontal with profile), the 10
splits identity-disjoint. Photos are named by their path under `Data/Images` ("001/frontal/01.jpg").
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from pathlib import Path

from rnnface.errors import DataError
from rnnface.io.folders import ImageRecord

PROTOCOLS = ("FF", "FP")
SPLITS = 10


@dataclass(frozen=True)
class CfpPair:
    a: str  # photo path under Data/Images
    b: str
    same: bool
    split: int  # 0-9

    @property
    def fold(self) -> int:
        """The split, under the name the verification metrics use."""
        return self.split


def check_root(root: str | Path) -> Path:
    """The CFP root, or DataError saying what is missing and where to get the set."""
    root = Path(root)
    if not (root / "Data" / "Images").is_dir() or not (root / "Protocol" / "Split").is_dir():
        raise DataError(
            f"{root}: not the CFP dataset (expected Data/Images and Protocol/Split); get it from "
            "http://www.cfpw.io/ (research use) and pass its folder with --cfp or RNNFACE_CFP"
        )
    return root


def cfp_images(root: str | Path) -> list[ImageRecord]:
    """Every photo, sorted by path, its person the CFP id ("001")."""
    images = check_root(root) / "Data" / "Images"
    records = [
        ImageRecord(f"{person.name}/{pose}/{img.name}", person.name)
        for person in sorted(p for p in images.iterdir() if p.is_dir())
        for pose in ("frontal", "profile")
        for img in sorted((person / pose).glob("*.jpg"))
    ]
    if not records:
        raise DataError(f"{root}: no photos under Data/Images")
    return records


@dataclass(frozen=True)
class PosedPhotos:
    """One person's photos by pose, each list sorted by name."""

    person: str  # the CFP id ("001")
    frontal: list[Path]
    profile: list[Path]


def posed_photos(root: str | Path, people: int | None = None) -> list[PosedPhotos]:
    """The frontal and profile photos of the first `people` people (all: None), in id order."""
    images = check_root(root) / "Data" / "Images"
    folders = sorted(p for p in images.iterdir() if p.is_dir())[:people]
    return [
        PosedPhotos(p.name, sorted((p / "frontal").glob("*.jpg")), sorted((p / "profile").glob("*.jpg")))
        for p in folders
    ]


def _numbered(path: Path) -> dict[int, str]:
    """Pair_list_F/P.txt: photo number -> path under Data/Images."""
    out = {}
    for line in path.read_text().splitlines():
        if line.strip():
            number, rel = line.split(maxsplit=1)
            out[int(number)] = rel.strip().split("Data/Images/", 1)[1]
    return out


def read_protocol(root: str | Path, protocol: str) -> list[CfpPair]:
    """The 7,000 pairs of protocol FF or FP, split by split."""
    if protocol not in PROTOCOLS:
        raise DataError(f"CFP protocol must be one of {PROTOCOLS}, got {protocol!r}")
    root = check_root(root)
    frontal = _numbered(root / "Protocol" / "Pair_list_F.txt")
    second = frontal if protocol == "FF" else _numbered(root / "Protocol" / "Pair_list_P.txt")
    pairs = []
    for split in range(SPLITS):
        folder = root / "Protocol" / "Split" / protocol / f"{split + 1:02d}"
        for name, same in (("same.txt", True), ("diff.txt", False)):
            for line in (folder / name).read_text().split():
                i, j = (int(v) for v in line.split(","))
                pairs.append(CfpPair(frontal[i], second[j], same, split))
    return pairs


def names(root: str | Path) -> dict[str, str]:
    """CFP id ("001") -> the person's name, from Data/list_name.txt (in id order)."""
    path = check_root(root) / "Data" / "list_name.txt"
    lines = [line.strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    return {f"{i + 1:03d}": name for i, name in enumerate(lines)}


def person_key(name: str) -> str:
    """A name as both sets can match it: no case, accents, spaces or punctuation ("George_W_Bush" = "George W Bush")."""
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return "".join(ch for ch in folded.lower() if ch.isalnum())


def lfw_people(root: str | Path, lfw_root: str | Path) -> dict[str, str]:
    """CFP id -> LFW folder, for the CFP people who are also in LFW (names matched without case, accents,
    spaces or punctuation): a model trained on LFW has seen them."""
    lfw = {person_key(p.name): p.name for p in Path(lfw_root).iterdir() if p.is_dir()}
    return {cfp_id: lfw[person_key(name)] for cfp_id, name in names(root).items() if person_key(name) in lfw}
