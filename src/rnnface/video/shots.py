"""Shot cuts: where a video jumps from one camera view to another, so that no face track crosses one.

PySceneDetect's content detector does the work (the change of hue, saturation and brightness between
consecutive frames, with its flash filter); frames are shrunk first, since a cut shows at any size.
"""

from __future__ import annotations

import cv2
import numpy as np

#: Width frames are shrunk to before they are compared.
WIDTH = 160


class ShotDetector:
    """Fed every frame in order; says which frames begin a new shot."""

    def __init__(self, fps: float, threshold: float = 27.0, min_shot_frames: int = 6) -> None:
        from scenedetect.common import FrameTimecode
        from scenedetect.detectors import ContentDetector

        self._timecode = FrameTimecode
        self.fps = float(fps)
        self._detector = ContentDetector(threshold=threshold, min_scene_len=min_shot_frames)

    def cut(self, index: int, frame: np.ndarray) -> bool:
        """Whether the RGB frame number `index` begins a new shot (the first frame never does)."""
        h, w = frame.shape[:2]
        small = cv2.resize(frame, (WIDTH, max(1, round(h * WIDTH / w))), interpolation=cv2.INTER_AREA)
        cuts = self._detector.process_frame(self._timecode(index, self.fps), cv2.cvtColor(small, cv2.COLOR_RGB2BGR))
        return bool(cuts) and index > 0
