"""The figure tables of README.md and docs/ are copies of tables in reports/ (which the commands write): each sits
in a block naming its report,

    <!-- figures: reports/lfw.md -->
    | method | accuracy (10-fold) | ... |
    ...
    <!-- /figures -->

and must equal a table of that file. A table with a figure in it (a decimal or a percentage) outside such a block
is an error: it could go stale unseen. A table of settings, not measurements, sits in `<!-- figures: none: WHY -->`.

    python tools/figures.py          # list what is stale or unsourced (exit 1 when anything is)
    python tools/figures.py --write  # copy each block's tables again from its report (matched by header row)
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"<!-- figures: (?P<report>\S+)(?: [^>]*)? -->\n(?P<body>.*?)<!-- /figures -->", re.S)
FIGURE = re.compile(r"\d\.\d|\d ?%")


def documents(root: Path = ROOT) -> list[Path]:
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def tables(text: str) -> list[tuple[int, list[str]]]:
    """Each markdown table of `text`: its first line's number (1-based) and its lines."""
    found, current, start = [], [], 0
    for i, line in enumerate(text.splitlines(), 1):
        if line.startswith("|"):
            start = start if current else i
            current.append(line.rstrip())
        elif current:
            found.append((start, current))
            current = []
    if current:
        found.append((start, current))
    return found


def problems(path: Path, root: Path = ROOT) -> list[str]:
    """What is wrong with `path`'s figure tables: one line each."""
    text = path.read_text()
    spans = [(text.count("\n", 0, m.start()) + 1, text.count("\n", 0, m.end()) + 1, m) for m in BLOCK.finditer(text)]
    out = []
    name = path.relative_to(root)
    for start, lines in tables(text):
        block = next((m for a, b, m in spans if a <= start <= b), None)
        if block is None:
            if FIGURE.search("\n".join(lines)):
                out.append(f"{name}:{start}: a figure table outside a figures block (from which report?)")
            continue
        report = root / block["report"]
        if block["report"] == "none:":
            continue  # settings or definitions, said so in the block's opening
        if not report.is_file():
            out.append(f"{name}:{start}: {block['report']} does not exist")
        elif lines not in [t for _, t in tables(report.read_text())]:
            out.append(f"{name}:{start}: not a table of {block['report']} (stale? python tools/figures.py --write)")
    return out


def refresh(path: Path, root: Path = ROOT) -> None:
    """Copy every block's tables again from its report, each matched by its header row."""

    def block(m: re.Match) -> str:
        if m["report"] == "none:":
            return m[0]
        report = {t[0]: t for _, t in tables((root / m["report"]).read_text())}
        body = m["body"]
        for _, lines in tables(body):
            if lines[0] in report:
                body = body.replace("\n".join(lines), "\n".join(report[lines[0]]), 1)
        return f"<!-- figures: {m['report']} -->\n{body}<!-- /figures -->"

    path.write_text(BLOCK.sub(block, path.read_text()))


def main(argv: list[str]) -> int:
    if "--write" in argv:
        for path in documents():
            refresh(path)
    found = [p for path in documents() for p in problems(path)]
    print("\n".join(found) or "every figure table matches its report")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
