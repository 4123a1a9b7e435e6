"""Training and evaluation commands: train, train-aggregator, train-liveness, eval lfw, eval cfp, eval sets, eval
detector, eval liveness."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast

import typer

from rnnface.cli.inputs import output_folder
from rnnface.cli.options import DEFAULT_CACHE, TYPER, CacheOpt, DataOpt, NuaaOpt, image_root, parse_folds

if TYPE_CHECKING:
    from rnnface.lab.data.prepare import FaceCache
    from rnnface.lab.evaluation.cfp import Method

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
    from rnnface.lab.training.config import load_config
    from rnnface.lab.training.loop import train as run_train

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
    from rnnface.lab.training.aggregator import AggregatorTrainConfig
    from rnnface.lab.training.aggregator import train_aggregator as run

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


SourceOpt = Annotated[
    list[Path] | None,
    typer.Option(
        "--source", help="A presentation set to train on beside NUAA: a folder with live/ and attack/ (photos, clips)."
    ),
]
FrontendOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--frontend", help="What the model reads of each frame: texture, lbp, minifasnet, geometry (default: texture)."
    ),
]
PerSourceOpt = Annotated[
    int, typer.Option(min=2, help="At most this many live and this many attack presentations a source.")
]
CopiesOpt = Annotated[
    int, typer.Option(min=0, help="Augmented copies (light, colour, blur, JPEG) of each source presentation.")
]
NuaaEveryOpt = Annotated[int, typer.Option(min=1, help="Read every this-many-th frame of NUAA's captures.")]
VectorsOpt = Annotated[
    Path, typer.Option(help="Folder caching the sets' frame vectors (one file for each set of inputs).")
]


@app.command("train-liveness")
def train_liveness(
    out: Annotated[Path, typer.Option(help="Checkpoint to write.")],
    nuaa: NuaaOpt = None,
    cell: Annotated[str, typer.Option(help="gru, lstm, rnn, or none (the per-frame ablation).")] = "gru",
    steps: Annotated[int, typer.Option(min=1, help="Training steps of each model (the same budget for all).")] = 1500,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    source: SourceOpt = None,
    frontend: FrontendOpt = None,
    per_source: PerSourceOpt = 200,
    copies: CopiesOpt = 2,
    nuaa_every: NuaaEveryOpt = 1,
    vectors: VectorsOpt = Path("cache/liveness-vectors"),
) -> None:
    """Train the presentation-attack detector on NUAA's training split (and each --source, every set drawn as
    often); each window length's threshold is the equal-error point of its scores on the training data."""
    from rnnface.lab.training.liveness import LivenessTrainConfig, fit_liveness
    from rnnface.liveness.frontends import list_frontends
    from rnnface.liveness.model import LivenessConfig, save_liveness
    from rnnface.settings import Settings

    root = nuaa or Settings.from_env().nuaa
    frontends = tuple(frontend or ["texture"])
    for name in frontends:
        if name not in list_frontends():
            raise typer.BadParameter(f"--frontend {name!r}: known: {', '.join(list_frontends())}")
    model = LivenessConfig(cell=cell, frontends=frontends)
    config = LivenessTrainConfig(model=model, steps=steps, seed=seed, balance_sessions=bool(source))

    def progress(stage: str, step: int, loss: float) -> None:
        if (step + 1) % 500 == 0 or step + 1 == steps:
            typer.echo(f"{stage}: step {step + 1}/{steps} loss {loss:.4f}", err=True)

    command = f"rnnface train-liveness --cell {cell} --steps {steps} --seed {seed} --out {out}"
    command += "".join(f" --frontend {n}" for n in frontends)
    if model.reads_crops_only and not source:
        fitted = fit_liveness(str(root), config, progress)
    else:
        from rnnface.lab.evaluation.crosssource import NUAA_TEST, protocol_sets
        from rnnface.lab.training.liveness import fit_stats
        from rnnface.lab.training.liveness_vectors import cached_vectors

        sources = [str(p) for p in source or []]
        sets = protocol_sets(sources, str(root), per_source, copies, nuaa_every)
        data = cached_vectors(vectors, sets, frontends, seed)
        fitted = fit_stats(data.subset(data.sessions != NUAA_TEST), config, lambda i, v: progress("train", i, v))
        fitted.meta["data"] = "NUAA's official training split and the presentation sets in train_sessions"
        fitted.meta.update(per_source=per_source, copies=copies)
        command += "".join(f" --source {s}" for s in sources)
        command += f" --per-source {per_source} --copies {copies} --nuaa-every {nuaa_every}"
    save_liveness(out, fitted.net, fitted.thresholds, {**fitted.meta, "command": command})
    eers = ", ".join(f"{w}: {v:.2%}" for w, v in fitted.meta["train_eer"].items())
    typer.echo(f"training EER by window ({eers}); written: {out}")


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
        Path | None,
        typer.Option(
            help="Write this run's false-accept curve into this checkpoint: its operating points (strict, balanced, "
            "loose) and the 1:N thresholds set for a gallery's size come from it."
        ),
    ] = None,
    peer: Annotated[
        list[str] | None,
        typer.Option(help="Also score with a pretrained peer: face_recognition, facenet, ensemble."),
    ] = None,
    folds: Annotated[
        str | None, typer.Option(help="Only these View-2 folds, e.g. 0,1,2,3,4 (default: all 10).")
    ] = None,
    runtime: Annotated[
        list[str] | None,
        typer.Option(
            help="Also score the first model group run as a user runs it, crops through the whole model in this "
            "runtime (torch, onnx, int8), a row each; the other rows read the float32 feature cache."
        ),
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
    from rnnface.lab.data.lfw import pairs_file
    from rnnface.lab.data.prepare import FaceCache
    from rnnface.lab.evaluation.lfw import fold_pairs, run_lfw
    from rnnface.models.checkpoint import set_calibration
    from rnnface.operating import points_table

    face_cache = FaceCache.open(cache)
    fold_set = parse_folds(folds)
    pair_list = fold_pairs(pairs or pairs_file(face_cache.meta["data"]), fold_set)
    groups = {name: model}
    groups.update(_named_row(item, "--also") for item in also or [])
    runtimes = {f"{name} ({r})": r for r in runtime or []}
    groups.update({label: model for label in runtimes})
    run = run_lfw(face_cache, groups, pair_list, name, peer or [], flip, far, runtimes)
    folds_scored = sorted(fold_set) if fold_set else list(range(10))
    models = {label: [str(m) for m in ckpts] for label, ckpts in groups.items()}
    report = run.report(models, flip, folds_scored)
    written = report.write(out)
    point = run.operating_point
    typer.echo(report.markdown())
    typer.echo(f"folds scored by: {run.rows[name]['model_of_fold']}")
    typer.echo(
        f"threshold at FAR={far:g}: {point['threshold']:.4f} (TAR {100 * point['tar']:.2f}%); written "
        + ", ".join(str(p) for p in written)
    )
    for search in run.rows[name]["identification"]["search"] or []:
        typer.echo(
            f"1:N at FPIR {search['fpir_aimed']:g} among {search['entries']:,} people ({search['gallery']}): threshold "
            f"{search['threshold']:.4f}, strangers named {100 * search['fpir_measured']:.2f}%, enrolled people "
            f"identified {100 * search['identified']:.2f}%"
        )
    if calibrate is not None:
        meta = {
            "lfw_identity_disjoint": run.reports[name].to_dict(),
            "lfw_search": run.rows[name]["identification"]["search"],
            "flip": flip,
        }
        assert run.calibration is not None  # measured for the `name` row at --far
        set_calibration(calibrate, run.calibration, meta)
        typer.echo(f"calibration ({run.calibration.impostor_pairs:,} cross-person pairs) stored in {calibrate}")
        typer.echo(points_table(run.calibration))


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
    from rnnface.lab.data.prepare import FaceCache
    from rnnface.lab.evaluation.sets import sets_report

    report = sets_report(FaceCache.open(cache), model, aggregator, tuple(sorted(parse_folds(folds))), rounds)
    written = report.write(out)
    data = report.to_dict()
    typer.echo(
        f"{data['people']} people, {data['genuine_pairs']} genuine and {data['impostor_pairs']} impostor template pairs"
    )
    typer.echo(report.markdown())
    typer.echo(f"written: {', '.join(str(p) for p in written)}")


@eval_app.command("detector")
def eval_detector(
    data: DataOpt = None,
    cfp: Annotated[Path | None, typer.Option(help="CFP root (default: $RNNFACE_CFP; left out where absent).")] = None,
    nuaa: NuaaOpt = None,
    photos: Annotated[int, typer.Option(min=10, help="Photos per face set.")] = 300,
    out: Annotated[Path, typer.Option(help="Directory for detector.json and detector.md.")] = Path("reports"),
) -> None:
    """Detector recall and the faces the FaceNet check drops on LFW, CFP frontal and profile photos, NUAA's live
    faces, skin tones under hard light, face crops and small faces, and false faces on photos without any: every
    detector choice (each backend without and with the check), on the same photos."""
    from rnnface.lab.evaluation.detector import HEADER, default_cfp, default_nuaa, detector_report

    output_folder(out, "--out")
    typer.echo(HEADER)
    report = detector_report(image_root(data), cfp or default_cfp(), nuaa or default_nuaa(), photos, typer.echo)
    typer.echo(f"written: {', '.join(str(p) for p in report.write(out))}")


@eval_app.command("cfp")
def eval_cfp(
    model: Annotated[
        list[Path] | None,
        typer.Option("--model", "-m", help="Checkpoints to score, a row each (default: the shipped one)."),
    ] = None,
    cfp: Annotated[Path | None, typer.Option(help="CFP root (default: $RNNFACE_CFP).")] = None,
    data: DataOpt = None,
    cache: Annotated[
        Path,
        typer.Option(
            help="Where CFP's faces and the models' front-end outputs are cached (cache/cfp112: MobileFaceNet)."
        ),
    ] = Path("cache/cfp160"),
    peer: Annotated[
        list[str] | None,
        typer.Option(
            help="Also score on the same pairs: facenet, face_recognition, ensemble (the teacher), mobilefacenet, "
            "mobilefacenet-flip."
        ),
    ] = None,
    ablate: Annotated[
        bool, typer.Option(help="Also score the first model without its recurrent correction (its linear map only).")
    ] = False,
    disjoint: Annotated[
        list[str] | None,
        typer.Option(
            help="'NAME=A.pt,B.pt': a row whose every split is scored by the checkpoint that held its people out "
            "(identity-disjoint, checked). Repeatable."
        ),
    ] = None,
    record: Annotated[
        Path | None,
        typer.Option(
            help="Store each operating point's FAR and TAR on CFP in this checkpoint: measured by the first "
            "--disjoint row on every CFP person when there is one, else by this checkpoint on the people not in LFW."
        ),
    ] = None,
    folds: Annotated[
        str | None, typer.Option(help="Only these splits, numbered 0-9 as folds (split k + 1), e.g. 5,6.")
    ] = None,
    out: Annotated[Path, typer.Option(help="Directory for cfp.json and cfp.md.")] = Path("reports"),
) -> None:
    """CFP frontal-frontal and frontal-profile (10 splits): accuracy, AUC, EER, TAR@FAR and detector misses, with
    the peers scored in the same run on the same pairs; the CFP people who are also in LFW are listed."""
    from rnnface.lab.data.cfp import check_root
    from rnnface.lab.evaluation.cfp import (
        cfp_cache,
        cfp_report,
        disjoint_method,
        ensemble_method,
        face_recognition_method,
        facenet_method,
        model_method,
        pretrained_method,
        run_cfp,
    )
    from rnnface.models import load_checkpoint
    from rnnface.settings import Settings, resolve_model

    settings = Settings.from_env()
    output_folder(out, "--out")
    peers: dict[str, Callable[[FaceCache], Method]] = {
        "facenet": facenet_method,
        "face_recognition": face_recognition_method,
        "ensemble": ensemble_method,
        **{name: partial(pretrained_method, name=name) for name in ("mobilefacenet", "mobilefacenet-flip")},
    }
    for name in peer or []:
        if name not in peers:
            raise typer.BadParameter(f"--peer takes {' or '.join(peers)}, got {name!r}")
    root = check_root(cfp or settings.cfp)
    rows = [_named_row(item, "--disjoint") for item in disjoint or []]
    checkpoints = model or ([] if rows else [resolve_model(None, settings)])
    frontend = load_checkpoint(rows[0][1][0] if rows else checkpoints[0]).frontend.name
    face_cache = cfp_cache(root, cache, frontend=frontend)
    fold_set = parse_folds(folds)
    # with --record, every model row embeds as the recorded checkpoint does (with its mirror or not)
    flip = load_checkpoint(record).meta.get("flip") if record is not None else None
    methods = [disjoint_method(name, paths, face_cache, root, fold_set, flip) for name, paths in rows]
    methods += [model_method(_row_name(Path(c)), Path(c), face_cache, flip=flip) for c in checkpoints]
    if ablate:
        if not checkpoints:
            raise typer.BadParameter("--ablate switches off the correction of a --model; give one")
        methods.append(model_method(f"{methods[0].name}, correction off", Path(checkpoints[0]), face_cache, False))
    methods += [peers[name](face_cache) for name in peer or []]
    lfw_root = image_root(data)
    run = run_cfp(root, face_cache, methods, lfw_root, {methods[0].name}, fold_set)
    models = [str(c) for c in checkpoints] + [f"{n}={','.join(map(str, p))}" for n, p in rows]
    report = cfp_report(run, models)
    written = report.write(out)
    typer.echo(report.markdown())
    typer.echo(
        f"{len(run.lfw_people)} of CFP's 500 people are also in LFW (listed in {out}/cfp.json); pairs without them: "
        f"FF {run.pairs_without_lfw['FF']:,}, FP {run.pairs_without_lfw['FP']:,}"
    )
    if record is not None:
        measured = methods[0] if rows else model_method(record.stem, record, face_cache)
        _record_cfp_points(record, face_cache, measured, set() if rows else set(run.lfw_people))
    typer.echo(f"written: {', '.join(str(p) for p in written)}")


def _named_row(item: str, option: str) -> tuple[str, list[Path]]:
    """'NAME=a.pt,b.pt' -> (NAME, [a.pt, b.pt])."""
    label, sep, paths = item.partition("=")
    if not sep or not label or not paths:
        raise typer.BadParameter(f"{option} takes NAME=a.pt,b.pt, got {item!r}")
    return label, [Path(p) for p in paths.split(",")]


def _row_name(checkpoint: Path) -> str:
    """A checkpoint's row: the run folder it was trained into (runs/facenet-a/backbone.pt: facenet-a), else its
    file name."""
    return f"rnnface {checkpoint.parent.name if checkpoint.stem == 'backbone' else checkpoint.stem}"


def _record_cfp_points(checkpoint: Path, cache, method, leave_out: set[str]) -> None:
    """Each named point's FAR and TAR on CFP, over `method`'s cross-person pairs of the people not in `leave_out`,
    into `checkpoint`."""
    from rnnface.errors import ModelError
    from rnnface.lab.evaluation.cfp import cross_person_scores
    from rnnface.models import load_checkpoint
    from rnnface.models.checkpoint import set_calibration

    calibration = load_checkpoint(checkpoint).calibration
    if calibration is None:
        raise ModelError(
            f"{checkpoint}: no calibration to add CFP figures to; run `rnnface eval lfw --calibrate` first"
        )
    for protocol in ("FF", "FP"):
        impostor, genuine = cross_person_scores(method, cache, protocol, leave_out)
        calibration = calibration.with_measured(f"cfp_{protocol.lower()}", impostor, genuine)
    set_calibration(checkpoint, calibration)
    typer.echo(f"operating points measured on CFP stored in {checkpoint}")


@eval_app.command("backbones")
def eval_backbones(
    row: Annotated[
        list[str] | None,
        typer.Option(help="'LABEL=A.pt,B.pt': identity-disjoint checkpoints scored as one row. Repeatable."),
    ] = None,
    peer: Annotated[
        list[str] | None,
        typer.Option(help="'LABEL=NAME': a pretrained embedder (mobilefacenet, mobilefacenet-flip, facenet) as a row."),
    ] = None,
    fuse: Annotated[
        list[str] | None, typer.Option(help="'LABEL A|LABEL B': a row of the sum of two rows' cosines. Repeatable.")
    ] = None,
    lfw: Annotated[
        list[str] | None,
        typer.Option(
            help="'FRONTEND=CACHE': the LFW face cache of each front-end (default mobilefacenet=cache/lfw112)."
        ),
    ] = None,
    cfp_cache: Annotated[
        list[str] | None,
        typer.Option(help="'FRONTEND=CACHE': CFP's face cache of each front-end, made when missing (cache/cfp112)."),
    ] = None,
    cfp: Annotated[Path | None, typer.Option(help="CFP root (default: $RNNFACE_CFP).")] = None,
    pairs: Annotated[Path | None, typer.Option(help="LFW pairs.txt (default: beside the cached dataset).")] = None,
    out: Annotated[Path, typer.Option(help="Directory for backbones.json and backbones.md.")] = Path("reports"),
) -> None:
    """The ablation of front-ends, heads and fusions: LFW View 2 and CFP FF / FP 10-fold accuracy of every row in
    one run, each fold scored by a model that never saw its people."""
    from rnnface.lab.data.cfp import check_root
    from rnnface.lab.data.lfw import pairs_file
    from rnnface.lab.data.prepare import FaceCache
    from rnnface.lab.evaluation.backbones import Caches, Row, backbones_report, run_backbones
    from rnnface.lab.evaluation.cfp import cfp_cache as make_cfp_cache
    from rnnface.lab.evaluation.lfw import fold_pairs
    from rnnface.models import load_checkpoint
    from rnnface.pretrained.embedders import pretrained_class
    from rnnface.settings import Settings

    output_folder(out, "--out")
    rows = [
        Row(label, load_checkpoint(paths[0]).frontend.name, tuple(paths))
        for label, paths in (_named_row(item, "--row") for item in row or [])
    ]
    for label, name in _pairs_of(peer or [], "--peer").items():
        try:
            frontend = pretrained_class(name).frontend
        except KeyError as exc:
            raise typer.BadParameter(f"--peer {label}={name}: {exc.args[0]}") from None
        if frontend is None:
            raise typer.BadParameter(f"--peer {label}={name}: not a front-end's own embedder (its caches are unknown)")
        rows.append(Row(label, frontend, peer=name))
    labels = {r.label for r in rows}
    fusions = [tuple(item.split("|", 1)) for item in fuse or []]
    if any(len(f) != 2 or not set(f) <= labels for f in fusions):
        raise typer.BadParameter(f"--fuse takes 'LABEL A|LABEL B' of two rows ({', '.join(sorted(labels))})")
    lfw_caches = {k: FaceCache.open(v) for k, v in _pairs_of(lfw or ["mobilefacenet=cache/lfw112"], "--lfw").items()}
    root = check_root(cfp or Settings.from_env().cfp)
    cfp_caches = {
        k: make_cfp_cache(root, Path(v), frontend=k)
        for k, v in _pairs_of(cfp_cache or ["mobilefacenet=cache/cfp112"], "--cfp-cache").items()
    }
    missing = {r.frontend for r in rows} - (set(lfw_caches) & set(cfp_caches))
    if missing:
        raise typer.BadParameter(f"give --lfw and --cfp-cache for every front-end the rows read: {sorted(missing)}")
    first = next(iter(lfw_caches.values()))
    caches = Caches(lfw_caches, cfp_caches, root, fold_pairs(pairs or pairs_file(first.meta["data"])))
    reports = run_backbones(rows, cast("list[tuple[str, str]]", fusions), caches, echo=typer.echo)  # pairs: checked
    report = backbones_report(rows, cast("list[tuple[str, str]]", fusions), reports)
    written = report.write(out)
    typer.echo(report.markdown())
    typer.echo(f"written: {', '.join(str(p) for p in written)}")


def _pairs_of(items: list[str], option: str) -> dict[str, str]:
    """['KEY=VALUE', ...] -> {KEY: VALUE}."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise typer.BadParameter(f"{option} takes KEY=VALUE, got {item!r}")
        out[key] = value
    return out


@eval_app.command("liveness")
def eval_liveness(
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model", "-m", help="'NAME=PATH' liveness checkpoints, a group of rows each (default: shipped)."
        ),
    ] = None,
    nuaa: NuaaOpt = None,
    pipeline: Annotated[
        bool, typer.Option(help="Also score the first model's test frames through our detector and crop (slow).")
    ] = False,
    active: Annotated[
        bool, typer.Option(help="Also measure the head-turn challenge on live turns (CFP) and replays.")
    ] = False,
    cfp: Annotated[Path | None, typer.Option(help="CFP root for --active (default: $RNNFACE_CFP).")] = None,
    other: Annotated[
        bool,
        typer.Option(
            help="Also judge other presentations with the first model and the peers: LFW photos and their simulated "
            "printed replays, NUAA's test frames as camera frames, and each --set."
        ),
    ] = False,
    presentation_set: Annotated[
        list[Path] | None,
        typer.Option("--set", help="A presentation set for --other: a folder with live/ and attack/ (photos, clips)."),
    ] = None,
    per_set: Annotated[
        int | None, typer.Option(min=2, help="At most this many live and this many attack presentations a --set.")
    ] = None,
    peer: Annotated[
        list[str] | None, typer.Option(help="Peers judged beside ours with --other (default: every registered one).")
    ] = None,
    peers_dir: Annotated[
        Path | None,
        typer.Option(help="Folder of the peers' model files (default: $RNNFACE_LIVENESS_PEERS, ../shared/models)."),
    ] = None,
    cross_source: Annotated[
        list[Path] | None,
        typer.Option(
            "--cross-source",
            help="Sources for the cross-source protocol (folders with live/ and attack/): each held out in turn.",
        ),
    ] = None,
    per_source: PerSourceOpt = 200,
    copies: CopiesOpt = 2,
    nuaa_every: NuaaEveryOpt = 1,
    vectors: VectorsOpt = Path("cache/liveness-vectors"),
    data: DataOpt = None,
    out: Annotated[Path, typer.Option(help="Directory for liveness.json, liveness.md and liveness_det.png.")] = Path(
        "reports"
    ),
) -> None:
    """Presentation-attack detection on NUAA's official test split: APCER, BPCER, ACER (= HTER) and EER at each
    model's training-chosen thresholds, single frame against 2, 4 and 8 frames, with DET and ROC curves; with
    --cross-source, the detector trained on all sources but one and tested on that one, beside MiniFASNet."""
    from rnnface.lab.evaluation.liveness import LivenessEval, run_liveness_eval
    from rnnface.liveness.check import packaged_liveness
    from rnnface.settings import Settings

    settings = Settings.from_env()
    output_folder(out, "--out")
    cfp_root = None
    if active:
        from rnnface.lab.data.cfp import check_root

        cfp_root = str(check_root(cfp or settings.cfp))
    spec = LivenessEval(
        nuaa=str(nuaa or settings.nuaa),
        models=[_named_liveness(item) for item in model or [f"shipped={packaged_liveness()}"]],
        pipeline=pipeline,
        active=active,
        cfp=cfp_root,
        lfw_images=image_root(data) if other else None,
        other=other,
        sets=list(presentation_set or []),
        per_set=per_set,
        peers=peer,
        peers_dir=peers_dir or settings.liveness_peers,
        cross_source=list(cross_source or []),
        per_source=per_source,
        copies=copies,
        nuaa_every=nuaa_every,
        vectors=vectors,
    )
    report = run_liveness_eval(spec, typer.echo)
    written = report.write(out)
    typer.echo(report.markdown())
    typer.echo(f"written: {', '.join(str(p) for p in written)}")


def _named_liveness(item: str) -> tuple[str, Path]:
    name, sep, path = item.partition("=")
    if not sep or not name or not path:
        raise typer.BadParameter(f"--model takes NAME=PATH, got {item!r}")
    return name, Path(path)


@eval_app.command("challenge")
def eval_challenge(
    cfp: Annotated[Path | None, typer.Option(help="CFP root (default: $RNNFACE_CFP).")] = None,
    people: Annotated[
        int | None, typer.Option(min=1, help="The first this many CFP people (default: all 500).")
    ] = None,
    frames: Annotated[int, typer.Option(min=4, help="Frames of each simulated printed replay.")] = 12,
    out: Annotated[Path, typer.Option(help="Directory for challenge.json and challenge.md.")] = Path("reports"),
) -> None:
    """The directed head-turn challenge on CFP: people asked for the turns they make (1 and 2 turns), the same
    turns replayed against every challenge, and printed photos turned before the camera (simulated), beside the
    any-turn check they replace."""
    from rnnface.lab.data.cfp import check_root
    from rnnface.lab.evaluation.challenge import run_challenge_eval
    from rnnface.settings import Settings

    output_folder(out, "--out")
    root = check_root(cfp or Settings.from_env().cfp)
    report = run_challenge_eval(str(root), people, frames=frames, echo=typer.echo)
    written = report.write(out)
    typer.echo(report.markdown())
    typer.echo(f"written: {', '.join(str(p) for p in written)}")


@eval_app.command("cluster")
def eval_cluster(
    lfw_cache: Annotated[Path, typer.Option("--lfw-cache", help="LFW face cache (rnnface prepare).")] = DEFAULT_CACHE,
    cfp_cache: Annotated[
        Path, typer.Option("--cfp-cache", help="CFP face cache (made by `rnnface eval cfp`, or here when missing).")
    ] = Path("cache/cfp160"),
    cfp: Annotated[Path | None, typer.Option(help="CFP root, to make --cfp-cache (default: $RNNFACE_CFP).")] = None,
    embedder: Annotated[
        list[str] | None,
        typer.Option("--embedder", "-e", help="Pretrained embeddings to cluster (default: facenet, face_recognition)."),
    ] = None,
    method: Annotated[
        list[str] | None, typer.Option("--method", help="Clustering methods (default: all; see the report).")
    ] = None,
    out: Annotated[Path, typer.Option(help="Directory for cluster.json and cluster.md.")] = Path("reports"),
) -> None:
    """Group all of LFW and all of CFP by person with every method on the same embeddings: pairwise and BCubed
    precision / recall / F, groups, time and memory; each set's setting chosen on the other set's labels."""
    from rnnface.lab.evaluation.clustering import cache_faces, cluster_report, clusterers

    output_folder(out, "--out")
    for name in method or []:
        if name not in clusterers:
            raise typer.BadParameter(f"--method {name!r}: known: {', '.join(clusterers.names())}")
    if not (cfp_cache / "meta.json").is_file():
        from rnnface.lab.data.cfp import cfp_images, check_root
        from rnnface.lab.data.prepare import prepare
        from rnnface.lab.evaluation.cfp import CFP_PREPARE
        from rnnface.settings import Settings

        root = check_root(cfp or Settings.from_env().cfp)
        prepare(root / "Data" / "Images", cfp_cache, CFP_PREPARE["facenet"], records=cfp_images(root))
    embedders = embedder or ["facenet", "face_recognition"]
    sets = [cache_faces("LFW", lfw_cache, embedders), cache_faces("CFP", cfp_cache, embedders)]
    report = cluster_report(sets, method)
    written = report.write(out)
    typer.echo(report.markdown())
    typer.echo(f"written: {', '.join(str(p) for p in written)}")
