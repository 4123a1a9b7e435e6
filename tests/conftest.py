"""Shared fixtures: the LFW copy beside the repo (tests needing it skip with a reason when absent).

Markers (declared in pyproject.toml, `--strict-markers`): `lfw` (set here on every test that uses a data set or
the shared models), `milvus_server` (set here on every test that uses the real Milvus server), `server` (set here
on every test that starts `rnnface serve` or runs on Milvus Lite, which starts a local server), `slow` and
`browser` (set on the tests themselves). `make test` (what CI runs) runs them all; `make test-fast` leaves out
slow, milvus_server and browser for the edit loop; `make test-unit` runs only what needs no data set and no
server.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LFW_FIXTURES = {"lfw_root", "lfw_images", "lfw_face"}
DATA_FIXTURES = LFW_FIXTURES | {"cfp_root", "nuaa_root", "shared_models"}
SERVER_FIXTURES = {"real_server", "server"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark what a test needs from what it uses: the data sets, a served rnnface, the real Milvus server."""
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if fixtures & DATA_FIXTURES:
            item.add_marker(pytest.mark.lfw)
        if fixtures & SERVER_FIXTURES:
            item.add_marker(pytest.mark.server)
        params = getattr(getattr(item, "callspec", None), "params", {})
        if "milvus_server" in fixtures or "milvus-server" in params.values():
            item.add_marker(pytest.mark.milvus_server)
        if any(str(v).startswith("milvus") for v in params.values()):
            item.add_marker(pytest.mark.server)  # Milvus Lite too runs a local server process


def _lfw_root() -> Path:
    return Path(os.environ.get("RNNFACE_DATA", REPO.parent / "shared" / "data" / "lfw"))


@pytest.fixture(scope="session")
def lfw_root() -> Path:
    """LFW root holding lfw/<Person>/ and pairs.txt."""
    root = _lfw_root()
    if not (root / "lfw").is_dir():
        pytest.skip(f"LFW not found at {root} (set RNNFACE_DATA to an LFW root holding lfw/ and pairs.txt)")
    return root


@pytest.fixture(scope="session")
def cfp_root() -> Path:
    """CFP root holding Data/Images and Protocol/ (beside the repo, or $RNNFACE_CFP)."""
    root = Path(os.environ.get("RNNFACE_CFP", REPO.parent / "shared" / "data" / "cfp"))
    if not (root / "Data" / "Images").is_dir():
        pytest.skip(f"CFP not found at {root} (set RNNFACE_CFP to a CFP root holding Data/ and Protocol/)")
    return root


@pytest.fixture(scope="session")
def nuaa_root() -> Path:
    """NUAA Photograph Imposter Database root (beside the repo, or $RNNFACE_NUAA)."""
    root = Path(os.environ.get("RNNFACE_NUAA", REPO.parent / "shared" / "data" / "nuaa"))
    if not (root / "ClientNormalized").is_dir():
        pytest.skip(f"NUAA not found at {root} (set RNNFACE_NUAA to a root holding ClientNormalized/ and the lists)")
    return root


@pytest.fixture(scope="session")
def shared_models() -> Path:
    """The pretrained models beside the repository (../shared/models, or $RNNFACE_MODELS)."""
    root = Path(os.environ.get("RNNFACE_MODELS", REPO.parent / "shared" / "models"))
    if not (root / "README.md").is_file():
        pytest.skip(f"the shared models are not at {root} (set RNNFACE_MODELS to the folder holding them)")
    return root


@pytest.fixture(scope="session")
def lfw_images(lfw_root: Path) -> Path:
    return lfw_root / "lfw"


@pytest.fixture(scope="session")
def lfw_face(lfw_images: Path) -> Path:
    """One LFW photo with a single clear face."""
    return lfw_images / "Aaron_Eckhart" / "Aaron_Eckhart_0001.jpg"


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A small untrained conv_birnn checkpoint with a threshold, for exercising embed/verify plumbing."""
    import torch

    from rnnface.models import create_model, save_checkpoint

    torch.manual_seed(0)
    model = create_model("conv_birnn", stem=(8, 16, 16), hidden=(16,), embed_dim=32)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_checkpoint(path, model, "conv_birnn", threshold=0.5, meta={"note": "untrained, tests only"})
    return path


@pytest.fixture(scope="session")
def calibrated_model(tmp_path_factory) -> Path:
    """The shipped model with a synthetic calibration (named points at their FARs), for threshold plumbing."""
    import numpy as np

    from rnnface.models import load_checkpoint, save_checkpoint
    from rnnface.operating import Calibration
    from rnnface.settings import Settings, resolve_model

    rng = np.random.default_rng(0)
    calibration = Calibration.from_scores(rng.normal(0, 0.12, 200_000), rng.normal(0.65, 0.12, 5_000), "synthetic")
    shipped = load_checkpoint(resolve_model(None, Settings()))
    path = tmp_path_factory.mktemp("calibrated") / "calibrated.pt"
    save_checkpoint(path, shipped.model, shipped.name, meta=shipped.meta, calibration=calibration)
    return path


def assert_no_crash(result) -> None:
    """A CLI run ended by the command itself (any exit code), not by an exception escaping it: the runner
    catches those into `result.exception`, so they never show up in the output."""
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)


def run_cli(*args, env: dict | None = None):
    """Invoke the rnnface CLI in-process with the shipped model; a crash fails the test."""
    from typer.testing import CliRunner

    from rnnface.cli import app

    result = CliRunner().invoke(app, [str(a) for a in args], env={"RNNFACE_MODEL": None, **(env or {})})
    assert_no_crash(result)
    return result


def run_gallery_cli(*args, gallery: Path):
    """`run_cli` with a given gallery."""
    return run_cli(*args, env={"RNNFACE_GALLERY": str(gallery)})


@pytest.fixture(scope="session")
def milvus_server(tmp_path_factory):
    """A real Milvus standalone server (PyPI's `milvus` package: its own etcd, a local port), for the session."""
    from tests.milvus_server import Server

    server = Server(tmp_path_factory.mktemp("milvus-server"))
    server.start()
    yield server
    server.stop()
