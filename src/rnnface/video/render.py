"""Pictures of a video's results: annotated frames, an annotated video, and the who-is-on-screen timeline."""

from __future__ import annotations

import zlib
from pathlib import Path

import cv2
import numpy as np

from rnnface.errors import RnnfaceError
from rnnface.gallery.records import is_unnamed
from rnnface.io.paths import atomic_output

#: Strong colours for named people (RGB, the tab10 palette), one per name (`_colour`), in the video and its timeline.
PALETTE = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
           (227, 119, 194), (188, 189, 34), (23, 190, 207)]  # fmt: skip
UNKNOWN_COLOUR = (170, 170, 170)  # muted: `unknown` is not a person


def _colour(key: str) -> tuple[int, int, int]:
    """A name's colour, the same in every run (the annotated video's labels, the timeline's bars): strong for a
    named person; muted for `unknown` and for an unnamed group (`unknown #k`: its palette colour 85 % grey)."""
    if key == "unknown":
        return UNKNOWN_COLOUR
    strong = PALETTE[zlib.crc32(key.encode()) % len(PALETTE)]
    if is_unnamed(key):
        return tuple(int(round(0.15 * c + 0.85 * g)) for c, g in zip(strong, UNKNOWN_COLOUR))  # type: ignore[return-value]
    return strong


def draw_tracks(frame: np.ndarray, tracks) -> np.ndarray:
    """A copy of an RGB frame with each track's last box and label."""
    out = frame.copy()
    for track in tracks:
        x1, y1, x2, y2 = (int(round(v)) for v in track.last_box)
        colour = _colour(track.shown_name)
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, 2)
        (tw, th), _ = cv2.getTextSize(track.label, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
        top = max(0, y1 - th - 6)
        cv2.rectangle(out, (x1, top), (x1 + tw + 6, top + th + 6), colour, -1)
        cv2.putText(out, track.label, (x1 + 3, top + th + 2), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return out


class VideoWriter:
    """MP4 (mp4v) writer of RGB frames, opened on the first frame; a context manager whose file appears at
    `path` whole when the block succeeds, and not at all when it fails."""

    def __init__(self, path: str | Path, fps: float) -> None:
        self.path = Path(path)
        self.fps = fps
        self._writer: cv2.VideoWriter | None = None
        # OpenCV picks the container by the suffix, so the temporary file keeps it
        self._output = atomic_output(self.path, "annotated video", keep_suffix=True)

    def __enter__(self) -> VideoWriter:
        self._tmp = self._output.__enter__()
        return self

    def write(self, frame: np.ndarray) -> None:
        if self._writer is None:
            h, w = frame.shape[:2]
            self._writer = cv2.VideoWriter(str(self._tmp), cv2.VideoWriter.fourcc(*"mp4v"), self.fps, (w, h))
            if not self._writer.isOpened():
                raise RnnfaceError(f"{self.path}: cannot write a video here (use a .mp4 name in a writable folder)")
        self._writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))

    def __exit__(self, *exc) -> None:
        if self._writer is not None:
            self._writer.release()
        self._output.__exit__(*exc)


def draw_timeline(tracks, duration: float, path: str | Path, cuts: tuple[float, ...] = (), width: int = 1000) -> Path:
    """PNG: one row per track (numbered 1, 2, ...), a bar from its first to its last time in its person's colour
    (named people strong, `unknown` muted grey), dashed lines at shot cuts, and a legend of who is who."""
    row, left, top = 30, 200, 44
    people = list(dict.fromkeys(t.person for t in tracks if t.person != "unknown"))
    colour = {"unknown": UNKNOWN_COLOUR}
    for person in people:  # the annotated video's colour of each name, unless two names share one
        c = _colour(person)
        while c in colour.values() and len(colour) <= len(PALETTE):
            c = PALETTE[(PALETTE.index(c) + 1) % len(PALETTE)]
        colour[person] = c
    legend = [*people, "unknown"] if any(t.person == "unknown" for t in tracks) else people
    height = top + row * max(1, len(tracks)) + 46 + 24 * ((len(legend) + 3) // 4)
    img = np.full((height, width, 3), 255, np.uint8)
    span = max(duration, 1e-3)
    scale = (width - left - 20) / span
    bottom = top + row * max(1, len(tracks))
    step = max(1, int(round(span / 10)))
    for s in range(0, int(span) + 1, step):
        x = left + int(s * scale)
        cv2.line(img, (x, top - 10), (x, bottom), (230, 230, 230), 1)
        cv2.putText(img, f"{s}s", (x - 8, bottom + 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (80, 80, 80), 1, cv2.LINE_AA)
    for cut in cuts:  # shot cuts: no track crosses one
        x = left + int(cut * scale)
        for y in range(top - 10, bottom, 8):
            cv2.line(img, (x, y), (x, min(y + 4, bottom)), (120, 120, 120), 1)
    for i, t in enumerate(tracks):
        y = top + i * row
        cv2.putText(
            img, f"#{t.id} {t.person}"[:26], (8, y + 19), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (20, 20, 20), 1, cv2.LINE_AA
        )
        x1 = left + int(t.first_time * scale)
        x2 = max(left + int(t.last_time * scale), x1 + 3)
        cv2.rectangle(img, (x1, y + 5), (x2, y + row - 7), colour[t.person][::-1], -1)
    cv2.putText(img, "who is on screen when", (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
    for k, name in enumerate(legend):
        x, y = 8 + (k % 4) * ((width - 16) // 4), bottom + 36 + 24 * (k // 4)
        cv2.rectangle(img, (x, y - 11), (x + 16, y + 3), colour[name][::-1], -1)
        cv2.putText(img, name[:28], (x + 22, y), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (20, 20, 20), 1, cv2.LINE_AA)
    with atomic_output(path, "timeline picture") as tmp:
        tmp.write_bytes(cv2.imencode(".png", img)[1].tobytes())
    return Path(path)
