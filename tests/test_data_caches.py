"""Face and feature caches: a damaged one is one line saying to rerun with --force (which then works), and a
`prepare` killed outright takes its worker processes with it."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import run_cli


@pytest.fixture
def tree(tmp_path, lfw_images) -> Path:
    root = tmp_path / "people"
    for person in ("Aaron_Eckhart", "Serena_Williams", "George_W_Bush"):
        (root / person).mkdir(parents=True)
        for src in sorted((lfw_images / person).iterdir())[:2]:
            (root / person / src.name).symlink_to(src)
    return root


def _damage(cache: Path, how: str) -> None:
    if how == "truncated faces":
        data = (cache / "faces.npy").read_bytes()
        (cache / "faces.npy").write_bytes(data[: len(data) // 2])
    elif how == "meta not JSON":
        (cache / "meta.json").write_text("{not json")
    elif how == "meta nested":
        (cache / "meta.json").write_text("[" * 50_000 + "]" * 50_000)
    elif how == "index missing":
        (cache / "index.csv").unlink()


@pytest.mark.parametrize("how", ["truncated faces", "meta not JSON", "meta nested", "index missing"])
def test_a_damaged_face_cache_says_rerun_with_force(tree, tmp_path, how):
    cache = tmp_path / "cache"
    assert run_cli("prepare", tree, "--out", cache, "--workers", "1").exit_code == 0
    _damage(cache, how)
    for args in (("prepare", tree, "--out", cache, "--workers", "1"), ("features", cache)):
        result = run_cli(*args)
        assert result.exit_code == 2, (args, result.output)
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and "incomplete or damaged cache" in lines[0] and "--force" in lines[0], result.output
    rebuilt = run_cli("prepare", tree, "--out", cache, "--workers", "1", "--force")
    assert rebuilt.exit_code == 0 and "built" in rebuilt.output, rebuilt.output


def test_a_damaged_feature_cache_says_rerun_with_force(tree, tmp_path):
    cache = tmp_path / "cache160"
    assert run_cli("prepare", tree, "--out", cache, "--crop", "facenet", "--workers", "1").exit_code == 0
    assert run_cli("features", cache, "--views", "1", "--workers", "1").exit_code == 0
    maps = cache / "frontend-facenet" / "block17.npy"
    maps.write_bytes(maps.read_bytes()[:1000])
    result = run_cli("features", cache, "--views", "1", "--workers", "1")  # the same settings: the cache is reused
    assert result.exit_code == 2 and "incomplete or damaged cache" in result.output and "--force" in result.output
    assert run_cli("features", cache, "--views", "1", "--workers", "1", "--force").exit_code == 0


def _children(pid: int) -> set[int]:
    out = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            out.add(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] != "Z"


@pytest.mark.slow
def test_kill_9_of_prepare_takes_its_workers_with_it(tmp_path, lfw_images):
    root = tmp_path / "many"
    for person in sorted(p for p in lfw_images.iterdir() if p.is_dir())[:400]:
        (root / person.name).mkdir(parents=True)
        for src in sorted(person.iterdir())[:1]:
            (root / person.name / src.name).symlink_to(src)
    proc = subprocess.Popen(
        [sys.executable, "-m", "rnnface", "prepare", str(root), "--out", str(tmp_path / "c"), "--workers", "2"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    workers: set[int] = set()
    while len(workers) < 2:  # the pool is up once both workers run (a spawned worker is a new python process)
        assert proc.poll() is None, "prepare ended before its pool was up"
        workers = {c for c in _children(proc.pid) if "multiprocessing" in Path(f"/proc/{c}/cmdline").read_text()}
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    while any(
        _alive(w) for w in workers
    ):  # they notice their parent is gone and end (the test's time limit bounds this)
        time.sleep(0.2)
    assert not any(_alive(w) for w in workers)
