"""`rnnface bench batch`: the same photos embedded by one CLI call per photo (a shell loop) and by one call on
their folder, which loads the model once."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run_batch_bench(root: Path, photos: int = 25, loop: int = 5) -> dict:
    """Wall time of `rnnface embed` on `photos` LFW photos: `loop` separate calls (scaled to all photos), and one
    call on the folder holding them."""
    from rnnface.io.folders import list_identity_images

    everyone = list_identity_images(root)
    records = everyone[:: max(1, len(everyone) // photos)][:photos]
    with tempfile.TemporaryDirectory(prefix="rnnface-batch-") as tmp:
        folder = Path(tmp)
        for r in records:
            (folder / Path(r.path).name).symlink_to((root / r.path).resolve())
        command = [sys.executable, "-m", "rnnface", "embed"]
        start = time.perf_counter()
        for r in records[:loop]:
            subprocess.run([*command, str(folder / Path(r.path).name)], check=True, capture_output=True)
        per_call = (time.perf_counter() - start) / loop
        start = time.perf_counter()
        subprocess.run([*command, str(folder), "--csv"], check=True, capture_output=True)
        one_call = time.perf_counter() - start
    return {
        "photos": len(records),
        "seconds_per_separate_call": round(per_call, 2),
        "separate_calls_seconds": round(per_call * len(records), 1),
        "one_call_seconds": round(one_call, 1),
    }
