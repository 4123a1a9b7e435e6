"""The package's layers hold: the product never imports the lab (`rnnface.lab`: data sets, training, evaluation,
benchmarks, the demo), but for the CLI's lab commands lazily inside the command; within each wing no module imports
a layer above its own (lazy imports inside functions count too); importing the model layer loads nothing above
it."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "rnnface"

#: The product's layers, lowest first; a module may import its own layer and the ones below.
LAYERS: list[set[str]] = [
    {"errors", "registry", "similarity", "operating", "settings", "progress"},
    {"io"},
    {"detection", "alignment"},
    {"models"},
    {"pretrained"},
    {"recognition"},
    {"aggregation"},
    {"gallery"},
    {"clustering"},
    {"video"},
    {"liveness"},
    {"draw", "api"},
    {"service", "cli", "__main__", "__init__", "weights"},
]
#: The lab's layers (`rnnface.lab.X`), lowest first: it may import the product, but not the CLI or the service.
#: Training and evaluation are one layer: a fit chooses its thresholds by the evaluation's metrics, and a
#: protocol trains the models it tests.
LAB_LAYERS: list[set[str]] = [{"data"}, {"training", "evaluation"}, {"benchmarks"}, {"demo", "__init__"}]
LEVEL = {name: i for i, layer in enumerate(LAYERS) for name in layer}
LAB_LEVEL = {name: i for i, layer in enumerate(LAB_LAYERS) for name in layer}


def _unit(module: str) -> str:
    """The top-level unit of `rnnface.X.Y` (X; for the lab, `lab`)."""
    return module.split(".")[1] if module.count(".") else "__init__"


def _lab_unit(module: str) -> str:
    """The lab unit of `rnnface.lab.X.Y` (X)."""
    parts = module.split(".")
    return parts[2] if len(parts) > 2 else "__init__"


def _imports(path: Path, lazy: bool = True) -> set[str]:
    """The rnnface modules `path` imports: every import, or with `lazy` False only those at module level."""
    found = set()
    tree = ast.parse(path.read_text())
    nodes = ast.walk(tree) if lazy else _module_level(tree)
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("rnnface"):
            if node.module in ("rnnface", "rnnface.lab"):
                found.update(f"{node.module}.{a.name}" for a in node.names)
            else:
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("rnnface."))
    return found


def _module_level(tree: ast.Module) -> list[ast.AST]:
    """The statements that run at import: the module's body, and what `if`/`try` blocks there hold (not an
    `if TYPE_CHECKING:` block, which only the type checker reads)."""
    out, todo = [], list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            todo += node.orelse
            continue
        out.append(node)
        if isinstance(node, ast.If | ast.Try):
            todo += [*node.body, *node.orelse, *getattr(node, "finalbody", []), *getattr(node, "handlers", [])]
        elif isinstance(node, ast.ExceptHandler):
            todo += node.body
    return out


def _modules() -> list[tuple[tuple[str, ...], Path]]:
    return [(p.relative_to(SRC).with_suffix("").parts, p) for p in SRC.rglob("*.py")]


def test_every_package_is_placed_in_a_layer():
    def units(folder: Path) -> set[str]:
        return {
            p.stem if p.is_file() else p.name
            for p in folder.iterdir()
            if p.suffix == ".py" or (p / "__init__.py").exists()
        }

    assert units(SRC) - {"lab"} <= set(LEVEL), f"place these in LAYERS: {sorted(units(SRC) - {'lab'} - set(LEVEL))}"
    assert units(SRC / "lab") <= set(LAB_LEVEL), (
        f"place these in LAB_LAYERS: {sorted(units(SRC / 'lab') - set(LAB_LEVEL))}"
    )


def test_the_product_never_imports_the_lab_but_a_cli_lab_command_lazily():
    found = []
    for parts, path in _modules():
        if parts[0] == "lab":
            continue
        imports = _imports(path, lazy=parts[0] != "cli")  # the CLI: only its module-level imports count
        found += [
            f"{'/'.join(parts)}.py imports {m}" for m in imports if m == "rnnface.lab" or m.startswith("rnnface.lab.")
        ]
    assert not found, "\n".join(sorted(found))


def test_no_module_imports_a_higher_layer():
    upward = []
    for parts, path in _modules():
        for imported in _imports(path):
            target = _unit(imported)
            if parts[0] == "lab":
                if target == "lab":
                    bad = LAB_LEVEL[_lab_unit(imported)] > LAB_LEVEL[parts[1] if len(parts) > 1 else "__init__"]
                else:
                    bad = target in LEVEL and LEVEL[target] >= LEVEL["service"]
            else:
                bad = target in LEVEL and LEVEL[target] > LEVEL[parts[0]]
            if bad:
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
    assert not loaded & {"recognition", "detection", "gallery", "service", "lab"}, loaded


def test_importing_the_product_loads_no_lab():
    code = "import sys, rnnface, rnnface.cli; print(sorted(m for m in sys.modules if m.startswith('rnnface.lab')))"
    loaded = ast.literal_eval(
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    )
    assert loaded == [], loaded


def _command_name(function: ast.FunctionDef) -> str | None:
    """The CLI command a function is registered as (`@app.command()` / `@x.command("name")`), else None."""
    for d in function.decorator_list:
        if isinstance(d, ast.Call) and isinstance(d.func, ast.Attribute) and d.func.attr == "command":
            if d.args and isinstance(d.args[0], ast.Constant):
                return str(d.args[0].value)
            return function.name.replace("_", "-")
    return None


#: CLI modules whose every command is the lab's (train*, eval ..., bench ...).
LAB_CLI_MODULES = {"train", "bench"}


def test_only_the_lab_commands_import_the_lab():
    """A user's verb (detect, identify, thresholds, serve, ...) loads nothing of the lab, even lazily."""
    from rnnface.cli import LAB_COMMANDS

    found = []
    for path in sorted((SRC / "cli").glob("*.py")):
        for node in ast.parse(path.read_text()).body:
            if not isinstance(node, ast.FunctionDef) or (name := _command_name(node)) is None:
                continue
            lab = sorted(m for m in _imports_of(node) if m.startswith("rnnface.lab"))
            if lab and name not in LAB_COMMANDS and path.stem not in LAB_CLI_MODULES:
                found.append(f"rnnface {name} (cli/{path.name}) imports {lab[0]}")
    assert not found, "\n".join(found)


def _imports_of(node: ast.AST) -> set[str]:
    out = set()
    for n in ast.walk(node):
        if isinstance(n, ast.ImportFrom) and n.module and n.module.startswith("rnnface"):
            out.add(n.module)
    return out
