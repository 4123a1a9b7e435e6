"""Operating points: which cosine threshold decides "same person", and what it costs.

A model's calibration is its false-accept curve (the threshold at each false-accept rate, FAR) measured
over every cross-person pair of people the model never saw (`rnnface eval lfw --calibrate`), stored in the
checkpoint with what each named point measured (FAR and TAR on LFW, then CFP). Names, not numbers, are
what a user picks:

- `strict` (FAR 1e-4): authentication, where a false accept lets someone in (the operator's to loosen, never the
  request's: `no_looser`);
- `balanced` (FAR 1e-3): `verify`'s default, a comparison of two photos;
- `loose` (FAR 1e-2): 1:1 only where a person checks every answer. Not for naming people in a search: among 20
  entries it names 18 % of strangers (`POINT_USES`, `search_fpir`).

1:1 and 1:N differ. A stranger searched among N enrolled entries is falsely identified when any of the
N comparisons passes: the false-positive identification rate (FPIR, as NIST FRVT reports it) is about
1 - (1 - FAR)^N. So `identify` chooses, by default, the threshold whose per-comparison FAR gives a target
FPIR (1e-2) at the gallery's actual size, from the same curve.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rnnface.errors import ModelError, ThresholdError
from rnnface.similarity import check_threshold

#: The named operating points and the false-accept rate each is calibrated for.
POINTS: dict[str, float] = {"strict": 1e-4, "balanced": 1e-3, "loose": 1e-2}
#: What `verify` (1:1) uses when nothing is asked for.
VERIFY_DEFAULT = "balanced"
#: The loosest threshold `authenticate` accepts unless the operator sets another (RNNFACE_AUTHENTICATE_THRESHOLD).
AUTHENTICATE_DEFAULT = "strict"
#: What each point does, 1:1 and 1:N (`rnnface thresholds` prints it beside each point's measured FPIR).
POINT_USES: dict[str, str] = {
    "strict": "1:1 authentication, where a stranger let in costs more than a retry",
    "balanced": "1:1: verify's default, a comparison of two photos",
    "loose": "1:1 where a person checks every answer; never to name people in a search (its FPIR)",
}
#: The false-positive identification rate `identify` (1:N) aims for by default, at the gallery's size.
SEARCH_FPIR = 1e-2
#: Grid of the stored curve: this many FAR values per decade.
STEPS_PER_DECADE = 8

ThresholdSpec = str | float | None
THRESHOLD_HELP = "strict (FAR 1e-4), balanced (FAR 1e-3), loose (FAR 1e-2), or a cosine similarity in [-1, 1]"


def parse_threshold(spec: object) -> ThresholdSpec:
    """A point name, a checked cosine, or None (the default); ThresholdError naming the choices otherwise."""
    if spec is None:
        return None
    value = spec
    if isinstance(spec, str):
        text = spec.strip().lower()
        if text in POINTS:
            return text
        try:
            value = float(text)
        except ValueError:
            value = None
    try:
        return check_threshold(value)
    except ModelError:
        raise ThresholdError(f"threshold must be {THRESHOLD_HELP}; got {spec!r}") from None


@dataclass(frozen=True)
class Threshold:
    """A decision threshold and where it came from: a named point, a search target, a given number."""

    value: float
    point: str  # strict | balanced | loose | search | given | checkpoint
    far: float | None = None  # per-comparison false-accept rate there, on the calibration data (None: unknown)
    fpir: float | None = None  # search: the target false-positive identification rate
    comparisons: int | None = None  # search: the gallery entries a probe is compared with
    floor: bool = False  # the asked FAR lies below what the calibration measured: its strictest threshold

    def describe(self) -> str:
        """One line for people: "balanced (FAR 1e-3)", "FPIR 1e-2 among 40 people (FAR 2.5e-4 each)"."""
        far = "" if self.far is None else f"FAR {self.far:.1e}".replace("e-0", "e-")
        if self.point == "search":
            floor = ", the calibration's strictest" if self.floor else ""
            return f"FPIR {self.fpir:g} among {self.comparisons} gallery entries ({far} per comparison{floor})"
        if self.point in POINTS:
            return f"{self.point} ({far})"
        return f"{self.point}{f' ({far} on the calibration data)' if far else ''}"

    def to_dict(self) -> dict[str, Any]:
        out = {"threshold": round(self.value, 4), "point": self.point, "far": self.far}
        if self.point == "search":
            out.update(fpir=self.fpir, comparisons=self.comparisons)
        return out


def far_for_fpir(fpir: float, comparisons: int) -> float:
    """The per-comparison FAR at which a stranger compared with `comparisons` entries is falsely identified
    with probability `fpir` (independent comparisons: FPIR = 1 - (1 - FAR)^N)."""
    if not 0 < fpir < 1:
        raise ModelError(f"FPIR must lie in (0, 1), got {fpir!r}")
    return -math.expm1(math.log1p(-fpir) / max(1, comparisons))


def search_fpir(far: float, comparisons: int) -> float:
    """The share of strangers a search among `comparisons` entries names at a per-comparison `far`: 1 - (1 - FAR)^N."""
    return -math.expm1(comparisons * math.log1p(-far))


@dataclass(frozen=True)
class Calibration:
    """A false-accept curve (thresholds rising as FAR falls) and what each named point measured."""

    fars: tuple[float, ...]  # descending, 1.0 first
    thresholds: tuple[float, ...]  # ascending: thresholds[i] is the lowest with FAR <= fars[i]
    impostor_pairs: int
    data: str  # what it was measured on, e.g. "LFW, identity-disjoint models A+B"
    measured: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)  # point -> data set -> figures

    @classmethod
    def from_scores(cls, impostor: np.ndarray, genuine: np.ndarray, data: str, label: str = "lfw") -> Calibration:
        """The curve of cross-person scores, down to one false accept; each named point's FAR and TAR as `label`."""
        impostor = np.sort(np.asarray(impostor, np.float32))[::-1]
        if len(impostor) < 2:
            raise ModelError("a calibration needs cross-person pairs")
        decades = math.log10(len(impostor))
        grid = 10.0 ** -(np.arange(int(decades * STEPS_PER_DECADE) + 1) / STEPS_PER_DECADE)
        thresholds = [lowest_threshold(impostor, f) for f in grid]
        calibration = cls(tuple(float(f) for f in grid), tuple(thresholds), len(impostor), data)
        return calibration.with_measured(label, impostor, genuine)

    def with_measured(self, label: str, impostor: np.ndarray, genuine: np.ndarray) -> Calibration:
        """A copy holding each named point's measured FAR and TAR on the scores of data set `label`."""
        impostor, genuine = np.asarray(impostor), np.asarray(genuine)
        measured = {name: dict(self.measured.get(name, {})) for name in POINTS}
        for name in POINTS:
            t = self.point(name).value
            measured[name][label] = {
                "far": float(np.mean(impostor >= t)),
                "tar": float(np.mean(genuine >= t)),
                "impostor_pairs": len(impostor),
                "genuine_pairs": len(genuine),
            }
        return Calibration(self.fars, self.thresholds, self.impostor_pairs, self.data, measured)

    def threshold_at(self, far: float) -> tuple[float, bool]:
        """The threshold of `far` (log-linear between grid points) and whether it lies past the curve's end."""
        floor = far < self.fars[-1]
        logs = np.log10(self.fars[::-1])  # ascending for np.interp
        value = float(np.interp(math.log10(max(far, self.fars[-1])), logs, self.thresholds[::-1]))
        return value, floor

    @property
    def background(self) -> float:
        """The median cosine between two different people's faces (the threshold at FAR 0.5)."""
        return self.threshold_at(0.5)[0]

    def far_at(self, threshold: float) -> float:
        """The false-accept rate at `threshold` on the calibration data (0 above the curve's strictest point)."""
        if threshold > self.thresholds[-1]:
            return 0.0
        return float(10 ** np.interp(threshold, self.thresholds, np.log10(self.fars)))

    def point(self, name: str) -> Threshold:
        value, _ = self.threshold_at(POINTS[name])
        return Threshold(value, name, POINTS[name])

    def search(self, comparisons: int, fpir: float = SEARCH_FPIR) -> Threshold:
        """The threshold giving `fpir` for a stranger compared with `comparisons` gallery entries."""
        far = far_for_fpir(fpir, comparisons)
        value, floor = self.threshold_at(far)
        return Threshold(value, "search", far, fpir, comparisons, floor)

    def to_dict(self) -> dict[str, Any]:
        return {
            "fars": list(self.fars),
            "thresholds": list(self.thresholds),
            "impostor_pairs": self.impostor_pairs,
            "data": self.data,
            "measured": self.measured,
        }

    @classmethod
    def from_dict(cls, raw: object) -> Calibration:
        """Validated: a descending FAR grid from 1, rising finite thresholds in [-1, 1]; ModelError otherwise."""
        if not isinstance(raw, Mapping):
            raise ModelError("its calibration is not a mapping")
        try:
            fars = tuple(float(f) for f in raw["fars"])
            thresholds = tuple(check_threshold(t, "its calibration's thresholds") for t in raw["thresholds"])
            impostor_pairs, data = int(raw["impostor_pairs"]), str(raw["data"])
            measured = dict(raw.get("measured") or {})
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"its calibration is malformed ({type(exc).__name__}: {exc})") from None
        rising = all(b >= a for a, b in zip(thresholds, thresholds[1:]))
        falling = all(0 < b < a <= 1 for a, b in zip(fars, fars[1:]))
        if len(fars) < 2 or len(fars) != len(thresholds) or not rising or not falling:
            raise ModelError("its calibration curve is malformed (FARs must fall and thresholds rise, pair by pair)")
        return cls(fars, thresholds, impostor_pairs, data, measured)


def lowest_threshold(impostor_desc: np.ndarray, far: float) -> float:
    """The lowest threshold at which at most a `far` share of the (descending) impostor scores pass."""
    allowed = int(math.floor(far * len(impostor_desc) + 1e-9))
    if allowed >= len(impostor_desc):
        return -1.0
    return float(min(1.0, np.nextafter(impostor_desc[allowed], np.float32(np.inf))))


def resolve(
    spec: ThresholdSpec,
    calibration: Calibration | None,
    single: float | None,
    comparisons: int | None = None,
    fpir: float = SEARCH_FPIR,
) -> Threshold:
    """The one rule for which threshold decides.

    `spec` is what was asked (a point name, a number, or None); `comparisons` is given for a search (1:N).
    With nothing asked: a search aims for `fpir` at its size, a comparison uses `VERIFY_DEFAULT`; a checkpoint
    without a calibration falls back to its single threshold (`single`).
    """
    spec = parse_threshold(spec)
    if isinstance(spec, float):
        return Threshold(spec, "given", calibration.far_at(spec) if calibration else None)
    if calibration is None:
        if spec is not None:
            raise ThresholdError(
                f"this model has no calibrated operating points, so {spec!r} means nothing; pass a number"
            )
        if single is None:
            raise ModelError("this model has no calibrated threshold; pass one explicitly (--threshold)")
        return Threshold(single, "checkpoint")
    if spec is not None:
        return calibration.point(spec)
    return calibration.search(comparisons, fpir) if comparisons is not None else calibration.point(VERIFY_DEFAULT)


def no_looser(asked: Threshold | None, floor: Threshold) -> Threshold:
    """A security decision's threshold: the operator's `floor`, or a stricter one `asked` for. A request may ask
    for stricter, never looser: ThresholdError, which names the floor, for a looser one."""
    if asked is None:
        return floor
    if asked.value < floor.value:
        raise ThresholdError(
            f"threshold {asked.value:.4f} is looser than the operator's {floor.describe()} at {floor.value:.4f}; "
            "a request may only ask for a stricter one (the operator sets RNNFACE_AUTHENTICATE_THRESHOLD)"
        )
    return asked


#: The data sets a calibration's points are measured on, as `points_table` names them.
MEASURED_ON = {"lfw": "LFW", "cfp_ff": "CFP-FF", "cfp_fp": "CFP-FP"}


#: Gallery sizes (entries) at which `uses_table` shows what each point does in a search.
USE_SIZES = (20, 100, 1000)


def uses_table(calibration: Calibration, sizes: tuple[int, ...] = USE_SIZES) -> str:
    """What each point is for, and what it does in 1:N: the share of strangers a search names at that point among
    each number of entries, from the FAR it measured on LFW (FPIR = 1 - (1 - FAR)^N)."""
    lines = [
        "| point | use | " + " | ".join(f"strangers named among {n:,} entries" for n in sizes) + " |",
        "| --- | --- |" + " --- |" * len(sizes),
    ]
    for name in POINTS:
        measured = calibration.measured.get(name, {}).get("lfw")
        far = measured["far"] if measured else calibration.point(name).far
        rates = [f"{100 * search_fpir(far, n):.1f}%" if far is not None else "-" for n in sizes]
        lines.append(f"| {name} | {POINT_USES[name]} | " + " | ".join(rates) + " |")
    return "\n".join(lines)


def points_table(calibration: Calibration) -> str:
    """A model's named operating points: threshold, and FAR / TAR measured on each data set it was scored on; for
    each set beside LFW, how many times LFW's false-accept rate that set meets at the same threshold."""
    sets = [k for k in MEASURED_ON if any(k in m for m in calibration.measured.values())]
    ratios = [k for k in sets if k != "lfw" and "lfw" in sets]
    head = "".join(f" {MEASURED_ON[k]} FAR | {MEASURED_ON[k]} TAR |" for k in sets)
    head += "".join(f" {MEASURED_ON[k]} / LFW FAR |" for k in ratios)
    lines = [
        f"| point | for | threshold |{head}",
        "| --- | --- | --- |" + " --- | --- |" * len(sets) + " --- |" * len(ratios),
    ]
    for name, far in POINTS.items():
        cells = [name, f"FAR {far:.0e}", f"{calibration.point(name).value:.4f}"]
        measured = calibration.measured.get(name, {})
        for k in sets:
            m = measured.get(k)
            cells += [f"{m['far']:.1e}", f"{100 * m['tar']:.2f}%"] if m else ["-", "-"]
        for k in ratios:
            lfw, other = measured.get("lfw"), measured.get(k)
            cells.append(f"{other['far'] / lfw['far']:.1f}x" if lfw and other and lfw["far"] > 0 else "-")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
