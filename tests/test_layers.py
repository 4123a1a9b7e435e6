"""The package's layers hold: no module imports a layer above its own (lazy imports inside functions count too),
and importing the model layer loads nothing above it."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "rnnface"

#: Lowest first; a module may import its own layer and the ones below.
LAYERS: list[set[str]] = [
    {"errors", "registry", "similarity", "operating", "settings", "progress"},
    {"io"},
    {"detection", "alignment"},
    {"models"},
    {"pretrained"},
    {"recognition"},
    {"aggregation"},
    {"data"},
    {"gallery"},
    {"clustering"},
    {"video"},
    {"liveness"},
    {"evaluation"},
    {"training"},
    {"benchmarks"},
    {"draw", "demo", "api"},
    {"service", "cli", "__main__", "__init__", "weights"},
]
LEVEL = {name: i for i, layer in enumerate(LAYERS) for name in layer}


def _unit(module: str) -> str:
    """The top-level unit of `rnnface.X.Y` (X), of a module path (`rnnface/X/...`)."""
    return module.split(".")[1] if module.count(".") else "__init__"


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("rnnface"):
            found.add(node.module if "." in node.module else f"rnnface.{node.names[0].name}")
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("rnnface."))
    return found


def test_every_package_is_placed_in_a_layer():
    units = {
        p.stem if p.is_file() else p.name for p in SRC.iterdir() if (p.suffix == ".py" or (p / "__init__.py").exists())
    }
    assert units <= set(LEVEL), f"place these in LAYERS: {sorted(units - set(LEVEL))}"


def test_no_module_imports_a_higher_layer():
    upward = []
    for path in SRC.rglob("*.py"):
        parts = path.relative_to(SRC).with_suffix("").parts
        unit = parts[0]
        for imported in _imports(path):
            target = _unit(imported)
            if target in LEVEL and LEVEL[target] > LEVEL[unit]:
                upward.append(f"{'/'.join(parts)}.py imports {imported}")
    assert not upward, "\n".join(sorted(upward))


def test_importing_the_model_layer_loads_nothing_above_it():
    code = (
        "import sys, rnnface.models; print(sorted({m.split('.')[1] for m in sys.modules if m.startswith('rnnface.')}))"
    )
    loaded = set(
        ast.literal_eval(
            subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
        )
    )
    assert not loaded & {"recognition", "detection", "gallery", "service", "training", "evaluation"}, loaded
