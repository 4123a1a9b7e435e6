"""The versioned JSON routes under /api/v1. Each declares its access (READ, WRITE) and computes with the app's
Engine; errors are raised as rnnface or HTTP errors and answered by `rnnface.service.errors`."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Annotated, Any, TypeVar

import numpy as np
from fastapi import APIRouter, Depends, File, Form, Path, Request, UploadFile

from rnnface import __version__
from rnnface.errors import ImageError, ImageTooLargeError, RnnfaceError, UnknownPersonError
from rnnface.gallery.enroll import EnrollSummary, NothingEnrolledError, store_person, usable_faces
from rnnface.gallery.identify import search_faces
from rnnface.gallery.records import check_person_name
from rnnface.liveness.active import Challenge
from rnnface.operating import SEARCH_FPIR, THRESHOLD_HELP, parse_threshold
from rnnface.service import schemas
from rnnface.service.access import READ, WRITE, takes
from rnnface.service.engine import Engine
from rnnface.service.errors import HttpError, source_name

T = TypeVar("T")

NameParam = Annotated[str, Path(min_length=1, max_length=256, description="The person's name, as enrolled.")]
ImageFile = Annotated[UploadFile, File(description="A photo: JPEG, PNG, WebP, BMP, GIF or TIFF.")]
ThresholdForm = Annotated[str | None, Form(description=f"{THRESHOLD_HELP}.", max_length=32)]
MinScoreForm = Annotated[
    float | None, Form(ge=0, le=1, description="Lowest detector score kept as a face (default: the server's).")
]
MinFaceForm = Annotated[
    int | None, Form(ge=1, le=4096, description="Smallest face kept, in pixels (default: the server's).")
]
NoDetectForm = Annotated[bool, Form(description="Treat the photo as one face crop, without detection.")]
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": schemas.Error} for code in (401, 403, 404, 409, 413, 415, 422, 429, 503, 504)
}
#: How an API client asks enrollment to take the largest face of a photo with several.
LARGEST_HINT = "set largest=true to use its largest face"


def engine_of(request: Request) -> Engine:
    return request.app.state.engine


EngineDep = Annotated[Engine, Depends(engine_of)]
api = APIRouter(prefix="/api/v1")


@api.get("/health", response_model=schemas.Health, tags=["service"])
async def health() -> schemas.Health:
    """Liveness: the process answers."""
    return schemas.Health(status="ok", version=__version__)


@api.get(
    "/ready",
    response_model=schemas.Ready,
    responses={503: {"model": schemas.Error}},
    dependencies=[READ],
    tags=["service"],
)
async def ready(engine: EngineDep) -> schemas.Ready:
    """Readiness: the model is loaded and the gallery opens (loads them if needed)."""

    def check() -> schemas.Ready:
        model_id = engine.pipeline.model_id
        with engine.gallery() as g:
            return schemas.Ready(status="ready", model=model_id, gallery_model=g.model_id, people=len(g.people()))

    try:
        return await engine.compute(check, timeout=False)
    except RnnfaceError as exc:
        raise HttpError(503, f"not ready: {exc}") from None


ONE_IMAGE, TWO_IMAGES, IMAGES, FRAMES = takes(1), takes(2), takes(None), takes("frames")
FramesFiles = Annotated[
    list[UploadFile],
    File(description="The clip's frames in time order (JPEG, PNG, ...), one person in view; one photo is one frame."),
]
ChallengeForm = Annotated[
    bool, Form(description="Also require a head turn (the person was asked to turn their head while filmed).")
]
AuthChallengeForm = Annotated[
    bool,
    Form(
        description="Require the head turn. The server requires it anyway unless its operator turned it off "
        "(RNNFACE_AUTHENTICATE_CHALLENGE=false); a request cannot turn it off."
    ),
]
ChallengeTokenForm = Annotated[
    str | None,
    Form(
        max_length=64,
        description="The token of a challenge from POST /api/v1/challenge whose turns the person was asked for: the "
        "clip must show those turns, in order. Needed wherever a turn is (unless RNNFACE_CHALLENGE_TURNS=0).",
    ),
]


@api.post("/detect", response_model=schemas.Detection, responses=ERRORS, dependencies=[READ, ONE_IMAGE], tags=["faces"])
async def detect(
    engine: EngineDep, image: ImageFile, min_score: MinScoreForm = None, min_face: MinFaceForm = None
) -> schemas.Detection:
    """Every face: box, score, 5 landmarks (largest first)."""
    data = await engine.upload_bytes(image, "image")

    def run():
        return engine.on_image(data, "image", lambda img: (img.shape, engine.faces(min_score, min_face).detect(img)))

    (height, width, _), faces = await engine.compute(run)
    return schemas.Detection(width=width, height=height, faces=[f.to_dict() for f in faces])


@api.post("/embed", response_model=schemas.Embedding, responses=ERRORS, dependencies=[READ, ONE_IMAGE], tags=["faces"])
async def embed(
    engine: EngineDep,
    image: ImageFile,
    min_score: MinScoreForm = None,
    min_face: MinFaceForm = None,
    no_detect: NoDetectForm = False,
) -> schemas.Embedding:
    """Every face with its unit embedding from the recurrent model."""
    data = await engine.upload_bytes(image, "image")

    def run():
        return engine.on_image(data, "image", engine.faces(min_score, min_face, not no_detect).embed)

    faces, emb = await engine.compute(run)
    faces_out = [
        schemas.EmbeddedFace.model_validate({**f.to_dict(), "embedding": e.round(6).tolist()})
        for f, e in zip(faces, emb)
    ]
    return schemas.Embedding(model=engine.pipeline.model_id, faces=faces_out)


@api.post(
    "/verify",
    response_model=schemas.VerifyResult,
    responses=ERRORS,
    dependencies=[READ, TWO_IMAGES],
    tags=["recognition"],
)
async def verify(
    engine: EngineDep,
    image_a: ImageFile,
    image_b: ImageFile,
    threshold: ThresholdForm = None,
    min_score: MinScoreForm = None,
    min_face: MinFaceForm = None,
    no_detect: NoDetectForm = False,
) -> schemas.VerifyResult:
    """Are the largest faces of two photos the same person? Decided at `threshold` (default: balanced)."""
    threshold_spec = parse_threshold(threshold)  # a bad one is refused before any upload is read
    uploads = [
        (await engine.upload_bytes(upload, field), field)
        for upload, field in ((image_a, "image_a"), (image_b, "image_b"))
    ]

    def run():
        pipeline = engine.faces(min_score, min_face, not no_detect)
        decide = pipeline.threshold(threshold_spec)
        found = []
        for data, field in uploads:  # one after the other: one image in memory at a time
            found.append(
                engine.on_image(data, field, lambda img, field=field: pipeline.face_embedding(img, None, field))
            )
        return pipeline.decide(*found, decide)

    return schemas.VerifyResult(**(await engine.compute(run)).to_dict())


@api.post(
    "/identify",
    response_model=schemas.IdentifyResult,
    responses=ERRORS,
    dependencies=[READ, ONE_IMAGE],
    tags=["recognition"],
)
async def identify(
    engine: EngineDep,
    image: ImageFile,
    top_k: Annotated[int, Form(ge=1, le=50, description="People listed per face.")] = 3,
    threshold: ThresholdForm = None,
    fpir: Annotated[
        float, Form(gt=0, lt=1, description="With no threshold: the false-positive identification rate aimed for.")
    ] = SEARCH_FPIR,
    min_score: MinScoreForm = None,
    min_face: MinFaceForm = None,
    no_detect: NoDetectForm = False,
) -> schemas.IdentifyResult:
    """Every face with its top-k people from the gallery, named or `unknown`. With no `threshold`, the name's
    threshold is set for `fpir` at the gallery's size (a stranger is compared with every entry)."""
    threshold_spec = parse_threshold(threshold)
    data = await engine.upload_bytes(image, "image")

    def run() -> tuple:
        pipeline = engine.faces(min_score, min_face, not no_detect)
        # no gallery needed while the photo is embedded: it stays free meanwhile
        shape, (faces, embeddings) = engine.on_image(data, "image", lambda img: (img.shape, pipeline.embed(img)))
        with engine.gallery() as g:
            return shape, search_faces(g, pipeline, faces, embeddings, top_k, threshold_spec, fpir=fpir)

    (height, width, _), results = await engine.compute(run)
    faces = [r.to_dict() for r in results]
    for face in faces:  # a CLI-enrolled face's source is a server path: only its file name goes out
        for match in face["matches"]:
            match["source"] = source_name(match["source"])
    return schemas.IdentifyResult(width=width, height=height, faces=faces)


@api.get("/people", response_model=schemas.PeopleList, responses=ERRORS, dependencies=[READ], tags=["people"])
async def list_people(engine: EngineDep) -> schemas.PeopleList:
    """Everyone enrolled."""

    def run() -> schemas.PeopleList:
        with engine.gallery() as g:
            people = [schemas.PersonSummary.model_validate(p.to_dict()) for p in g.people()]
            return schemas.PeopleList(model=g.model_id, people=people)

    return await engine.compute(run)


# {name:path}: a name with "/" (sent as %2F, which the server decodes) must still reach its person
@api.get("/people/{name:path}", response_model=schemas.Person, responses=ERRORS, dependencies=[READ], tags=["people"])
async def get_person(engine: EngineDep, name: NameParam) -> schemas.Person:
    """One enrolled person, with the sources of their faces."""

    def run() -> schemas.Person:
        with engine.gallery() as g:
            faces = list(g.faces(name))
        if not faces:
            raise UnknownPersonError(f"no person named {name!r}")
        return schemas.Person(name=name, faces=len(faces), sources=[source_name(f.source) for f in faces])

    return await engine.compute(run)


@api.post(
    "/people",
    status_code=201,
    response_model=schemas.Enrolled,
    responses=ERRORS,
    dependencies=[WRITE, IMAGES],
    tags=["people"],
)
async def enroll(
    engine: EngineDep,
    name: Annotated[str, Form(min_length=1, max_length=256, description="The person's name.")],
    images: Annotated[list[UploadFile], File(description="One or more photos, one face each.")],
    largest: Annotated[bool, Form(description="Use the largest face of a photo with several.")] = False,
    keep_crops: Annotated[bool, Form(description="Store aligned crops so the gallery can be re-embedded.")] = False,
    min_score: MinScoreForm = None,
    min_face: MinFaceForm = None,
    no_detect: NoDetectForm = False,
) -> schemas.Enrolled:
    """Enroll (or add photos to) a person, all photos in one transaction; unusable photos are listed, not stored."""
    check_person_name(name)  # before any upload is decoded
    # One rule with the CLI: a photo that cannot be used (not an image, corrupt, no face, several faces) is
    # listed with its reason and the others are enrolled; the request fails only when none can be used, or when
    # one passes a limit. Photos are decoded and embedded one at a time (one image slot).
    uploads = [(f"upload:{label}", data, why) for label, data, why in await photo_uploads(engine, images)]

    def run() -> EnrollSummary:
        pipeline, summary, records = engine.faces(min_score, min_face, not no_detect), EnrollSummary(), []
        with engine.gallery() as g:
            g.check_model(pipeline.model_id)  # before any detection work
        for found in each_image(  # the gallery stays free meanwhile
            engine,
            uploads,
            summary.skipped,
            lambda label, img: usable_faces(pipeline, [(label, img)], summary, largest, keep_crops),
        ):
            records += found
        with engine.gallery() as g:
            return store_person(g, pipeline.model_id, name, records, summary, engine.pool)

    try:
        summary = await engine.compute(run, timeout=False)  # a write runs to completion
    except NothingEnrolledError as exc:
        reasons = "; ".join(f"{label}: {reason}" for label, reason in exc.summary.with_hint(LARGEST_HINT).skipped)
        raise NothingEnrolledError(f"nothing enrolled for {name!r}: {reasons}", exc.summary) from None
    skipped = [schemas.Skipped(image=label, reason=reason) for label, reason in summary.with_hint(LARGEST_HINT).skipped]
    return schemas.Enrolled(name=name, faces=summary.faces, already=summary.already, skipped=skipped)


@api.delete(
    "/people/{name:path}", response_model=schemas.Removed, responses=ERRORS, dependencies=[WRITE], tags=["people"]
)
async def delete_person(engine: EngineDep, name: NameParam) -> schemas.Removed:
    """Delete a person with every embedding, crop and source reference."""

    def run() -> schemas.Removed:
        with engine.gallery() as g:
            return schemas.Removed(name=name, faces=g.remove(name))

    return await engine.compute(run, timeout=False)


async def frame_uploads(engine: Engine, frames: list[UploadFile]) -> list[bytes]:
    """The bytes of a clip's frames, within the frame count and each frame's size limit."""
    limit = engine.settings.max_frames
    if len(frames) > limit:
        raise HttpError(413, f"at most {limit} frames per request, got {len(frames)}")
    return [await engine.upload_bytes(f, f"frames[{i}]", engine.settings.max_frame_bytes) for i, f in enumerate(frames)]


@api.post(
    "/challenge", response_model=schemas.ChallengeIssued, responses=ERRORS, dependencies=[READ], tags=["liveness"]
)
async def challenge(engine: EngineDep) -> schemas.ChallengeIssued:
    """A head-turn challenge: the turns to ask the person for, drawn at random, and the token to send with the clip
    they film (to /authenticate or /liveness), good for one try within `expires_in_s`."""
    issued = engine.challenges.issue()
    return schemas.ChallengeIssued.model_validate(
        {"token": issued.token, "turns": list(issued.turns), "expires_in_s": engine.settings.challenge_ttl_s}
    )


def asked_turns(engine: Engine, token: str | None, turn: bool) -> Challenge:
    """What a clip must show: the turns of the challenge `token` names (used up now), else any turn when `turn`,
    which the service allows only when its operator asks for no directed turns (RNNFACE_CHALLENGE_TURNS=0)."""
    if token is not None:
        return engine.challenges.redeem(token) or True
    if turn and engine.settings.challenge_turns:
        raise HttpError(
            422,
            "this service chooses the head turns: POST /challenge for them before filming, ask the person for them, "
            "and send the challenge's token as challenge_token",
        )
    return turn


def observe_frames(engine: Engine, uploads: list[bytes], embed: bool) -> list:
    """Each frame decoded in turn (one image slot), its face observed; only what the check needs is kept."""
    observed = []
    for i, data in enumerate(uploads):
        found = engine.on_image(data, f"frames[{i}]", partial(engine.liveness.observe, index=i, embed=embed))
        if found is not None:
            observed.append(found)
    return observed


@api.post(
    "/liveness", response_model=schemas.Liveness, responses=ERRORS, dependencies=[READ, FRAMES], tags=["liveness"]
)
async def liveness(
    engine: EngineDep, frames: FramesFiles, challenge: ChallengeForm = False, challenge_token: ChallengeTokenForm = None
) -> schemas.Liveness:
    """Is the face live or a printed photo? One photo is judged alone, a clip by its frames together; with a
    challenge's token, the clip must also show its turns."""
    asked = asked_turns(engine, challenge_token, challenge)
    uploads = await frame_uploads(engine, frames)

    def run():
        return engine.liveness.judge(observe_frames(engine, uploads, False), len(uploads), asked)

    return schemas.Liveness(**(await engine.compute(run)).to_dict())


@api.post(
    "/authenticate",
    response_model=schemas.Authentication,
    responses=ERRORS,
    dependencies=[READ, FRAMES],
    tags=["liveness"],
)
async def authenticate(
    engine: EngineDep,
    name: Annotated[str, Form(min_length=1, max_length=256, description="The enrolled person to authenticate as.")],
    frames: FramesFiles,
    threshold: ThresholdForm = None,
    challenge: AuthChallengeForm = False,
    challenge_token: ChallengeTokenForm = None,
) -> schemas.Authentication:
    """Is this the enrolled person, live? Liveness with the head-turn challenge (unless the operator turned it off:
    the turns of `challenge_token`'s challenge, or any turn where RNNFACE_CHALLENGE_TURNS=0), then 1:1 against
    their template at the operator's threshold (RNNFACE_AUTHENTICATE_THRESHOLD: strict, FAR 1e-4, by default);
    `threshold` may ask for a stricter one, and a looser one is refused (422). The gallery is only read: nothing is
    enrolled or changed."""
    from rnnface.liveness.authenticate import MIN_FRAMES, decide_observed, prepare

    asked = asked_turns(engine, challenge_token, challenge or engine.settings.authenticate_challenge)  # never dropped
    threshold_spec = parse_threshold(threshold)
    floor = engine.settings.authenticate_threshold
    uploads = await frame_uploads(engine, frames)

    def run():
        with engine.gallery() as g:
            decide = prepare(g, engine.liveness, name, threshold_spec, floor)  # before any frame is decoded
        observed = observe_frames(engine, uploads, True)  # the gallery stays free meanwhile
        with engine.gallery() as g:
            return decide_observed(g, engine.liveness, name, observed, len(uploads), decide, asked, MIN_FRAMES)

    return schemas.Authentication(**(await engine.compute(run)).to_dict())


async def photo_uploads(engine: Engine, images: list[UploadFile]) -> list[tuple[str, bytes | None, str]]:
    """(file name, bytes or None, why not) of each photo, within the per-request count and each upload's size."""
    limit = engine.settings.max_images
    if len(images) > limit:
        raise HttpError(413, f"at most {limit} images per request, got {len(images)}")
    uploads: list[tuple[str, bytes | None, str]] = []
    for i, upload in enumerate(images):
        label = (upload.filename or f"image{i}")[:200]
        try:
            uploads.append((label, await engine.upload_bytes(upload, f"images[{i}]"), ""))
        except HttpError as exc:
            if exc.status == 413:
                raise
            uploads.append((label, None, str(exc).split(": ", 1)[-1]))
    return uploads


def each_image(
    engine: Engine, uploads: list[tuple[str, bytes | None, str]], skipped: list, work: Callable[[str, np.ndarray], T]
) -> list[T]:
    """`work(label, image)` for each upload in turn, each decoded in an image slot that is given back before the next
    (`Engine.on_image`); an upload that did not arrive or does not decode is added to `skipped` with why (a limit
    still refuses the request)."""
    out = []
    for i, (label, data, why) in enumerate(uploads):
        if data is None:
            skipped.append((label, why))
            continue
        try:
            out.append(engine.on_image(data, f"images[{i}]", partial(work, label)))
        except ImageTooLargeError:
            raise
        except ImageError as exc:
            skipped.append((label, str(exc).split(": ", 1)[-1]))
    return out


def found_faces(
    engine: Engine, uploads: list[tuple[str, bytes | None, str]], readable: bool = True
) -> tuple[list, list]:
    """Every face of the uploads, embedded one photo at a time (one image slot), and the photos skipped, with why;
    with `readable`, ImageError when none could be read."""
    from rnnface.clustering.photos import FoundFace, check_readable, find_faces

    faces: list[FoundFace] = []
    skipped: list[tuple[str, str]] = []
    for found, missed in each_image(
        engine, uploads, skipped, lambda label, img: find_faces(engine.pipeline, [(label, img)])
    ):
        faces += found
        skipped += missed
    if readable:
        check_readable(faces, skipped)
    return faces, skipped


def _clustering(engine: Engine, threshold: str | None) -> tuple:
    """The threshold groups merge at (a point name or a cosine; the clustering default) and how they pool."""
    from rnnface.clustering.photos import clustering_pooling, clustering_threshold

    return clustering_threshold(engine.pipeline, parse_threshold(threshold)), clustering_pooling(engine.pipeline)


PhotosFiles = Annotated[list[UploadFile], File(description="The photos whose faces are to be grouped.")]
MinSizeForm = Annotated[int, Form(ge=1, le=1000, description="Smaller groups are left alone.")]


@api.post("/cluster", response_model=schemas.Clustered, responses=ERRORS, dependencies=[READ, IMAGES], tags=["cluster"])
async def cluster(
    engine: EngineDep, images: PhotosFiles, threshold: ThresholdForm = None, min_size: MinSizeForm = 2
) -> schemas.Clustered:
    """Who is in these photos? Their faces grouped by person (strict point by default); nothing is stored."""
    from rnnface.clustering.photos import PhotoGroups, group_faces

    decide, pooling = _clustering(engine, threshold)
    uploads = await photo_uploads(engine, images)

    def run() -> PhotoGroups:
        faces, skipped = found_faces(engine, uploads)
        return group_faces(faces, decide, min_size, skipped, pooling)

    return schemas.Clustered(**(await engine.compute(run)).to_dict())


@api.post(
    "/clusters", response_model=schemas.KeptGroups, responses=ERRORS, dependencies=[WRITE, IMAGES], tags=["cluster"]
)
async def keep_clusters(
    engine: EngineDep, images: PhotosFiles, threshold: ThresholdForm = None, min_size: MinSizeForm = 2
) -> schemas.KeptGroups:
    """Add these photos' faces to the gallery's unnamed groups (unknown #k): each joins a group, founds one with
    others (at least `min_size`), or is left alone; one that matches a named person is reported, not stored."""
    from rnnface.clustering.store import keep_groups

    decide, pooling = _clustering(engine, threshold)
    uploads = await photo_uploads(engine, images)

    def run() -> tuple[list, list]:
        with engine.gallery() as g:
            g.check_model(engine.pipeline.model_id)  # before any detection work
        faces, skipped = found_faces(engine, uploads)  # the gallery stays free meanwhile
        with engine.gallery() as g:
            return keep_groups(g, engine.pipeline.model_id, faces, decide, min_size, pooling=pooling), skipped

    return _kept(decide, pooling, *await engine.compute(run, timeout=False))


def _kept(decide, pooling, placed: list, skipped: list[tuple[str, str]]) -> schemas.KeptGroups:
    return schemas.KeptGroups(
        **decide.to_dict(),
        **pooling.to_dict(),
        faces=[p.to_dict() for p in placed],
        skipped=[schemas.Skipped(image=s, reason=r) for s, r in skipped],
    )


RunParam = Annotated[str, Path(min_length=1, max_length=64, description="The run's token (POST /cluster/runs).")]


@api.post(
    "/cluster/runs",
    status_code=201,
    response_model=schemas.ClusterRun,
    responses={**ERRORS, 429: {"model": schemas.Error}},
    dependencies=[READ],
    tags=["cluster"],
)
async def start_cluster_run(engine: EngineDep) -> schemas.ClusterRun:
    """Group a selection larger than one request takes, as one set: send its photos to /cluster/runs/{run}/photos
    in requests of up to RNNFACE_MAX_IMAGES, then group them (/groups) or keep them (/keep). Only each face's box
    and embedding are held, never the photos."""
    runs = engine.runs
    return schemas.ClusterRun(run=runs.start(), max_faces=runs.max_faces, idle_s=runs.idle_s)


@api.post(
    "/cluster/runs/{run}/photos",
    response_model=schemas.ClusterRunPhotos,
    responses=ERRORS,
    dependencies=[READ, IMAGES],
    tags=["cluster"],
)
async def add_cluster_run_photos(engine: EngineDep, run: RunParam, images: PhotosFiles) -> schemas.ClusterRunPhotos:
    """Find and embed these photos' faces into the run (a photo that gives none is listed with why)."""
    engine.runs.check(run)
    uploads = await photo_uploads(engine, images)

    def work() -> tuple:
        faces, skipped = found_faces(engine, uploads, readable=False)
        return engine.runs.add(run, len(uploads), faces, skipped), len(faces), skipped

    state, added, skipped = await engine.compute(work)
    return schemas.ClusterRunPhotos(
        photos=state.photos,
        faces=len(state.faces),
        added=added,
        skipped=[schemas.Skipped(image=s, reason=r) for s, r in skipped],
    )


@api.post(
    "/cluster/runs/{run}/groups",
    response_model=schemas.Clustered,
    responses=ERRORS,
    dependencies=[READ],
    tags=["cluster"],
)
async def group_cluster_run(
    engine: EngineDep, run: RunParam, threshold: ThresholdForm = None, min_size: MinSizeForm = 2
) -> schemas.Clustered:
    """The run's faces grouped by person, as one set (as POST /cluster groups one request's); the run ends."""
    from rnnface.clustering.photos import group_faces

    decide, pooling = _clustering(engine, threshold)
    state = engine.runs.take(run)
    groups = await engine.compute(lambda: group_faces(state.faces, decide, min_size, state.skipped, pooling))
    return schemas.Clustered(**groups.to_dict())


@api.post(
    "/cluster/runs/{run}/keep",
    response_model=schemas.KeptGroups,
    responses=ERRORS,
    dependencies=[WRITE],
    tags=["cluster"],
)
async def keep_cluster_run(
    engine: EngineDep, run: RunParam, threshold: ThresholdForm = None, min_size: MinSizeForm = 2
) -> schemas.KeptGroups:
    """Add the run's faces to the gallery's unnamed groups as one set (as POST /clusters adds one request's); the
    run ends once they are stored."""
    from rnnface.clustering.store import keep_groups

    decide, pooling = _clustering(engine, threshold)
    state = engine.runs.take(run)  # taken at once: two keeps of one run cannot store its faces twice

    def work() -> list:
        with engine.gallery() as g:
            return keep_groups(g, engine.pipeline.model_id, state.faces, decide, min_size, pooling=pooling)

    placed = await engine.compute(work, timeout=False)
    return _kept(decide, pooling, placed, state.skipped)


@api.delete("/cluster/runs/{run}", status_code=204, responses=ERRORS, dependencies=[READ], tags=["cluster"])
async def delete_cluster_run(engine: EngineDep, run: RunParam) -> None:
    """Drop the run and every face it holds."""
    engine.runs.take(run)


GroupParam = Annotated[str, Path(min_length=1, max_length=20, description="The unnamed group's number k.")]


@api.post(
    "/clusters/{group}/name", response_model=schemas.Renamed, responses=ERRORS, dependencies=[WRITE], tags=["cluster"]
)
async def name_cluster(
    engine: EngineDep,
    group: GroupParam,
    name: Annotated[
        str, Form(min_length=1, max_length=256, description="The person the group is, or another group's number.")
    ],
) -> schemas.Renamed:
    """Make unnamed group k the person `name` (joining them if enrolled), or merge it into group `name`."""
    from rnnface.clustering.store import group_target, name_group, unnamed_label

    label, into = unnamed_label(group), group_target(name)  # before the gallery is touched

    def run() -> int:
        with engine.gallery() as g:
            return name_group(g, label, name)

    return schemas.Renamed(group=label, name=into, faces=await engine.compute(run, timeout=False))


@api.post(
    "/faces/{face_id}/split", response_model=schemas.SplitOff, responses=ERRORS, dependencies=[WRITE], tags=["cluster"]
)
async def split_face(
    engine: EngineDep,
    face_id: Annotated[int, Path(ge=0, le=2**63 - 1, description="The stored face's id (`face_id`).")],
) -> schemas.SplitOff:
    """Take a stored face out of its group (or person) into a new unnamed group of its own: it was someone else."""
    from rnnface.clustering.store import split_face

    def run() -> tuple[str, str]:
        with engine.gallery() as g:
            return split_face(g, face_id)

    was, group = await engine.compute(run, timeout=False)
    return schemas.SplitOff(face_id=face_id, was=was, group=group)
