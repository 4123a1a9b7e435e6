"""What every benchmark report carries: the machine it was measured on, written whole as JSON."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

from rnnface.io.paths import atomic_output


def machine() -> dict:
    """What the figures were measured on."""
    import torch

    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
    }


def write_report(report: dict, path: str | Path) -> Path:
    """Write `report` as indented JSON, whole or not at all."""
    with atomic_output(path, "report") as tmp:
        tmp.write_text(json.dumps(report, indent=2))
    return Path(path)
