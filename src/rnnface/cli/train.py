"""Training and evaluation commands: train, train-aggregator, eval lfw, eval sets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rnnface.cli.options import DEFAULT_CACHE, TYPER, CacheOpt, parse_folds

app = typer.Typer(**TYPER)
eval_app = typer.Typer(help="Evaluate models by standard protocols.", no_args_is_help=True, **TYPER)
app.add_typer(eval_app, name="eval")


@app.command()
def train(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML config file (see configs/).")] = None,
    override: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a config key: --set epochs=10 --set model_args.cell=lstm"),
    ] = None,
    resume: Annotated[
        bool, typer.Option(help="Continue from the last epoch checkpointed in the output directory.")
    ] = False,
    device: Annotated[str | None, typer.Option(help="cpu, cuda, cuda:1 ... (overrides the config).")] = None,
) -> None:
    """Train a recurrent backbone with a margin loss on a prepared face cache (torchrun for several processes)."""
    from rnnface.training.config import load_config
    from rnnface.training.loop import train as run_train

    overrides = list(override or []) + ([f"device={device}"] if device else [])
    path = run_train(load_config(config, overrides), resume=resume)
    typer.echo(f"checkpoint: {path}")


@app.command("train-aggregator")
def train_aggregator(
    backbone: Annotated[Path, typer.Option(help="Checkpoint whose embeddings the aggregator pools.")],
    cache: CacheOpt = DEFAULT_CACHE,
    out: Annotated[Path, typer.Option(help="Output directory (aggregator.pt, metrics.csv).")] = Path("runs/aggregator"),
    exclude_folds: Annotated[
        str, typer.Option(help="LFW View-2 folds whose people are left out, e.g. 0,1,2,3,4 ('' for none).")
    ] = "",
    steps: Annotated[int, typer.Option(min=1, help="Training steps (batches of sets).")] = 600,
    variants: Annotated[int, typer.Option(min=1, help="Versions of each image: 1 clean + degraded ones.")] = 3,
    cell: Annotated[str, typer.Option(help="gru, lstm or rnn.")] = "gru",
    correction: Annotated[
        bool, typer.Option(help="Learn a correction beside the attention weights (off: attention-weighted mean).")
    ] = True,
    anchor: Annotated[float, typer.Option(help="Weight of the pull towards mean pooling (0 = none).")] = 5.0,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """Train the recurrent aggregator on sets of LFW faces (identity-disjoint when folds are excluded)."""
    from rnnface.training.aggregator import AggregatorTrainConfig
    from rnnface.training.aggregator import train_aggregator as run

    folds = tuple(sorted(parse_folds(exclude_folds, "--exclude-folds", allow_empty=True)))
    cfg = AggregatorTrainConfig(
        backbone=str(backbone),
        cache=str(cache),
        out=str(out),
        exclude_folds=folds,
        steps=steps,
        variants=variants,
        cell=cell,
        correction=correction,
        anchor=anchor,
        seed=seed,
    )
    typer.echo(f"aggregator: {run(cfg)}")


@eval_app.command("lfw")
def eval_lfw(
    model: Annotated[
        list[Path],
        typer.Option("--model", "-m", help="Identity-disjoint checkpoints; together they must exclude all 10 folds."),
    ],
    cache: CacheOpt = DEFAULT_CACHE,
    pairs: Annotated[Path | None, typer.Option(help="pairs.txt (default: beside the cached dataset).")] = None,
    out: Annotated[Path, typer.Option(help="Directory for lfw.json, lfw.md and lfw_roc.png.")] = Path("reports"),
    flip: Annotated[bool, typer.Option(help="Average each embedding with its mirror image's.")] = True,
    name: Annotated[str, typer.Option(help="Row name in the table and plot.")] = "rnnface",
    also: Annotated[
        list[str] | None, typer.Option(help="More identity-disjoint models in the same run: NAME=a.pt,b.pt")
    ] = None,
    calibrate: Annotated[
        Path | None, typer.Option(help="Write the operating threshold (at --far) into this checkpoint.")
    ] = None,
    peer: Annotated[
        list[str] | None,
        typer.Option(help="Also score with a pretrained peer: face_recognition, facenet, ensemble."),
    ] = None,
    folds: Annotated[
        str | None, typer.Option(help="Only these View-2 folds, e.g. 0,1,2,3,4 (default: all 10).")
    ] = None,
    far: Annotated[
        float,
        typer.Option(
            help="False-accept rate of the operating threshold (set over every cross-person pair of the evaluated "
            "people): "
            "used for the open-set figures and written by --calibrate."
        ),
    ] = 1e-4,
) -> None:
    """LFW View 2 (10-fold accuracy, AUC, EER, TAR@FAR, ROC) and 1:N rank-1/5, scored only by models that never saw
    the people."""
    from rnnface.data.lfw import pairs_file
    from rnnface.data.prepare import FaceCache
    from rnnface.evaluation.lfw import fold_pairs, run_lfw
    from rnnface.evaluation.report import plot_roc, write_json, write_text
    from rnnface.models.checkpoint import set_threshold

    face_cache = FaceCache.open(cache)
    fold_set = parse_folds(folds)
    pair_list = fold_pairs(pairs or pairs_file(face_cache.meta["data"]), fold_set)
    groups = {name: model}
    for item in also or []:
        label, sep, paths = item.partition("=")
        if not sep or not paths:
            raise typer.BadParameter(f"--also takes NAME=a.pt,b.pt, got {item!r}")
        groups[label] = [Path(p) for p in paths.split(",")]
    run = run_lfw(face_cache, groups, pair_list, name, peer or [], flip, far)
    table = run.markdown()
    out.mkdir(parents=True, exist_ok=True)
    folds_scored = sorted(fold_set) if fold_set else list(range(10))
    models = {label: [str(m) for m in ckpts] for label, ckpts in groups.items()}
    write_json(
        {"name": name, "models": models, "flip": flip, "folds": folds_scored, "rows": run.rows}, out / "lfw.json"
    )
    write_text(table, out / "lfw.md")
    plot_roc(run.curves, out / "lfw_roc.png", "LFW View 2 (rnnface: identity-disjoint models)")
    point = run.operating_point
    typer.echo(table)
    typer.echo(f"folds scored by: {run.rows[name]['model_of_fold']}")
    typer.echo(
        f"threshold at FAR={far:g}: {point['threshold']:.4f} (TAR {100 * point['tar']:.2f}%); written "
        f"{out}/lfw.json, lfw.md, lfw_roc.png"
    )
    if calibrate is not None:
        meta = {"lfw_identity_disjoint": run.reports[name].to_dict(), "operating_point": point, "flip": flip}
        set_threshold(calibrate, point["threshold"], meta)
        typer.echo(f"calibrated threshold (FAR={far:g}) stored in {calibrate}")


@eval_app.command("sets")
def eval_sets(
    model: Annotated[Path, typer.Option("--model", "-m", help="Backbone that left the evaluation folds' people out.")],
    aggregator: Annotated[
        Path, typer.Option(help="Aggregator trained without those people (rnnface train-aggregator).")
    ],
    cache: CacheOpt = DEFAULT_CACHE,
    folds: Annotated[str, typer.Option(help="View-2 folds whose people are evaluated.")] = "0,1,2,3,4",
    rounds: Annotated[int, typer.Option(min=1, help="Template draws per person.")] = 3,
    out: Annotated[Path, typer.Option(help="Directory for sets.json and sets.md.")] = Path("reports"),
) -> None:
    """Template (set-to-set) verification and rank-1: single image vs mean pooling vs the recurrent aggregator."""
    from rnnface.data.prepare import FaceCache
    from rnnface.evaluation.report import write_json, write_text
    from rnnface.evaluation.sets import evaluate_sets, markdown

    report = evaluate_sets(FaceCache.open(cache), model, aggregator, tuple(sorted(parse_folds(folds))), rounds)
    table = markdown(report)
    write_json(report, out / "sets.json")
    write_text(table, out / "sets.md")
    typer.echo(
        f"{report['people']} people, {report['genuine_pairs']} genuine and {report['impostor_pairs']} impostor "
        "template pairs"
    )
    typer.echo(table)
    typer.echo(f"written: {out}/sets.json, sets.md")
