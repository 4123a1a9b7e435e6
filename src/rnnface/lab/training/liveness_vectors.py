"""Frame vectors of presentation sets, for training the detector across sources and for the cross-source test.

Each presentation (a photo or a clip) goes through our detector once a frame; its face (the most face-like one)
is cut as the model reads it, and its front-ends' features are kept a frame. Augmented copies (`photometric`:
light, colour, blur, JPEG) reuse the face found on the original. MiniFASNet's own score is kept beside each
original frame, so the peer is scored on exactly the faces ours is. The result can be cached, one `.npz` file
for each set of inputs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import cast

import numpy as np
import torch

from rnnface.io.paths import OutputError, atomic_output
from rnnface.lab.evaluation.presentations import PresentationSet
from rnnface.lab.training.liveness import StatSet
from rnnface.lab.training.liveness_augment import photometric
from rnnface.liveness.crop import liveness_crop
from rnnface.liveness.model import NUAA_EYES

#: The crop geometry every front-end set is cut with (NUAA's eye positions, 64x64).
CROP_SIZE = 64
FORMAT = "rnnface-liveness-vectors/1"


def presentation_vectors(
    sets: Sequence[tuple[PresentationSet, int]], frontends: Sequence[str], seed: int = 0
) -> StatSet:
    """Frame vectors of every presentation of each (set, augmented copies) pair: one capture per presentation and
    copy, its session the set's name. A presentation without a face is a capture of no frames (no peer score)."""
    from rnnface.detection import most_face_like
    from rnnface.liveness.frontends import MiniFASNetFeatures, frame_features, frontend
    from rnnface.progress import progress_bar
    from rnnface.recognition.faceness import face_detector

    detector = face_detector()
    runner = cast(MiniFASNetFeatures, frontend("minifasnet")).runner  # the peer's score, on our faces
    rng = np.random.default_rng(seed)
    vectors: list[np.ndarray] = []
    lengths, live, sessions, copies, peer = [], [], [], [], []
    bar = progress_bar(total=sum(len(s) for s, _ in sets), desc="frame vectors", unit="presentation", leave=False)
    for pset, extra in sets:
        for is_live, load in pset.presentations():
            found = []
            for frame in load():
                faces = detector.detect(frame)
                if faces:
                    face = faces[most_face_like(faces)[0]]
                    found.append((frame, face, liveness_crop(frame, face.landmarks, NUAA_EYES, CROP_SIZE)))
            scores = [_peer_score(runner.run(frame, face)[0]) for frame, face, _ in found]
            for k in range(1 + extra):
                for frame, face, crop in found:
                    if k:
                        frame = photometric(frame, rng)
                        crop = liveness_crop(frame, face.landmarks, NUAA_EYES, CROP_SIZE)
                    vectors.append(frame_features(frontends, frame, face, crop))
                lengths.append(len(found))
                live.append(is_live)
                sessions.append(pset.name)
                copies.append(k)
                peer.extend(scores if k == 0 else [np.nan] * len(found))
            bar.update()
    bar.close()
    lengths_arr = np.array(lengths, dtype=np.int64)
    dim = len(vectors[0]) if vectors else 0
    return StatSet(
        torch.from_numpy(np.stack(vectors) if vectors else np.zeros((0, dim), np.float32)),
        np.concatenate([[0], np.cumsum(lengths_arr)[:-1]]).astype(np.int64),
        lengths_arr,
        np.array(live, dtype=bool),
        np.array(sessions),
        np.array(copies, dtype=np.int64),
        np.array(peer),
    )


def _peer_score(probabilities: np.ndarray) -> float:
    """MiniFASNet's rule as a score: P(real) less the likelier attack (live at 0 or above)."""
    fake_print, real, fake_replay = probabilities
    return float(real - max(fake_print, fake_replay))


def cached_vectors(
    folder: str | Path | None, sets: Sequence[tuple[PresentationSet, int]], frontends: Sequence[str], seed: int = 0
) -> StatSet:
    """`presentation_vectors`, kept in `folder` as one file per set of inputs (the sets, copies, front-ends, seed
    and crop geometry): read when there, else computed and written; `folder` None: computed only."""
    key = json.dumps(
        {
            "sets": [(s.name, len(s.live), len(s.attack), k) for s, k in sets],
            "frontends": list(frontends),
            "seed": seed,
            "crop": [CROP_SIZE, NUAA_EYES],  # a file cut with other eye positions is another one
        }
    )
    digest = hashlib.sha256(key.encode()).hexdigest()
    path = None if folder is None else Path(folder) / f"{digest[:20]}.npz"
    if path is not None and Path(path).exists():
        try:
            with np.load(path, allow_pickle=False) as z:
                ours = "format" in z.files and str(z["format"]) == FORMAT
                if ours and str(z["key"]) == digest:
                    return StatSet(
                        torch.from_numpy(z["stats"]),
                        z["starts"],
                        z["lengths"],
                        z["live"],
                        z["sessions"],
                        z["copy"],
                        z["peer"],
                    )
        except (OSError, ValueError, KeyError):
            ours = False
        if not ours:
            raise OutputError(f"{path}: exists and is not a frame-vector cache; not overwritten")
    data = presentation_vectors(sets, frontends, seed)
    if path is not None:
        assert data.copy is not None and data.peer is not None  # set by StatSet.__post_init__
        with atomic_output(path) as tmp, open(tmp, "wb") as f:
            np.savez(
                f,
                format=FORMAT,
                key=digest,
                stats=data.stats.numpy(),
                starts=data.starts,
                lengths=data.lengths,
                live=data.live,
                sessions=data.sessions,
                copy=data.copy,
                peer=data.peer,
            )
    return data
