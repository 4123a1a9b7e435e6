"""The `rnnface` command line: a thin layer over the library, one module per group of commands.

Every RnnfaceError (bad image, no face, missing model, ...) prints one line `error: ...` and exits 2.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from typer._click.core import Context  # Typer's own Click, whose Group.invoke this overrides
from typer._click.exceptions import NoArgsIsHelpError, UsageError  # Typer's own Click, whose errors these are
from typer.core import TyperGroup

from rnnface import __version__
from rnnface.cli import bench, cluster, data, faces, gallery, liveness, service, train, video
from rnnface.cli.options import TYPER
from rnnface.errors import RnnfaceError

#: Which pyproject extra brings each optional top-level module.
_EXTRAS = {
    "train": {"kornia", "sklearn", "matplotlib"},
    "milvus": {"pymilvus", "milvus_lite"},
    "service": {"fastapi", "uvicorn", "multipart", "httpx", "swagger_ui_bundle"},
    "teacher": {"dlib", "face_recognition", "face_recognition_models"},
}


#: The lab's commands (they make and measure models; each imports `rnnface.lab` inside its body): `--help` lists
#: them after the user's verbs.
LAB_COMMANDS = (
    "prepare",
    "features",
    "quantize",
    "derive-mobilefacenet",
    "train",
    "train-aggregator",
    "train-liveness",
    "eval",
    "bench",
    "demo",
)


class _Group(TyperGroup):
    """Lists the user's verbs first and the lab's commands after them. Turns every RnnfaceError and every usage
    error (a bad option value, a missing file) into one line `error: ...` and exit 2, and a missing optional
    package into the extra to install."""

    def format_commands(self, ctx: Context, formatter: Any) -> None:
        width = formatter.width - 6 - max((len(n) for n in self.list_commands(ctx)), default=0)
        sections: dict[bool, list[tuple[str, str]]] = {False: [], True: []}
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                sections[name in LAB_COMMANDS].append((name, command.get_short_help_str(width)))
        for title, lab in (("Commands", False), ("Lab commands (make and measure models)", True)):
            if sections[lab]:
                with formatter.section(title):
                    formatter.write_dl(sections[lab])

    def invoke(self, ctx: Context) -> Any:
        try:
            return super().invoke(ctx)
        except RnnfaceError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(exc.exit_code) from None
        except NoArgsIsHelpError:
            raise
        except UsageError as exc:  # a bad option value, a missing file: one line too, not the usage text
            command = exc.ctx.command_path if exc.ctx is not None else "rnnface"
            typer.echo(f"error: {command}: {exc.format_message()} (see {command} --help)", err=True)
            raise typer.Exit(exc.exit_code) from None
        except ModuleNotFoundError as exc:
            root = (exc.name or "").split(".")[0]
            extra = next((e for e, modules in _EXTRAS.items() if root in modules), "train")
            typer.echo(f"error: optional dependency {exc.name!r} is missing: pip install 'rnnface[{extra}]'", err=True)
            raise typer.Exit(2) from None


app = typer.Typer(
    cls=_Group, help="Face detection, alignment and recognition with recurrent networks.", no_args_is_help=True, **TYPER
)
for group in (faces, gallery, cluster, video, liveness, data, train, service):
    app.add_typer(group.app)
app.add_typer(bench.app, name="bench")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"rnnface {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Face detection, alignment and recognition with recurrent networks."""


def main() -> None:
    """Console-script entry point."""
    app()
