"""The README is a front door (at most 300 lines) and every figure table in it and in docs/ is a copy of a table
its report file holds (`tools/figures.py`): no copy can go stale unseen. Every relative link points at a file."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("figures", ROOT / "tools" / "figures.py")
figures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(figures)


def test_the_readme_is_at_most_300_lines():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 300


@pytest.mark.parametrize("path", figures.documents(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_figure_table_matches_its_report(path):
    assert not figures.problems(path), "\n".join(figures.problems(path))


@pytest.mark.parametrize("path", figures.documents(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_points_at_a_file(path):
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", path.read_text())
    missing = [t for t in links if "://" not in t and not (path.parent / t).exists()]
    assert not missing, missing


def test_a_stale_copy_and_an_unsourced_figure_are_caught(tmp_path):
    (tmp_path / "reports").mkdir()
    (tmp_path / "docs").mkdir()
    (tmp_path / "reports" / "r.md").write_text("| model | accuracy |\n| --- | --- |\n| a | 99.1% |\n")
    fresh = "<!-- figures: reports/r.md -->\n| model | accuracy |\n| --- | --- |\n| a | 99.1% |\n<!-- /figures -->\n"
    (tmp_path / "README.md").write_text(fresh)
    (tmp_path / "docs" / "p.md").write_text(fresh.replace("99.1", "98.7") + "\n| x | y |\n| --- | --- |\n| b | 3.5 |\n")
    assert figures.problems(tmp_path / "README.md", tmp_path) == []
    stale = figures.problems(tmp_path / "docs" / "p.md", tmp_path)
    assert len(stale) == 2 and "not a table of reports/r.md" in stale[0] and "outside a figures block" in stale[1]
    figures.refresh(tmp_path / "docs" / "p.md", tmp_path)
    assert len(figures.problems(tmp_path / "docs" / "p.md", tmp_path)) == 1  # the unsourced one stays an error
