"""The HTTP API: every route, every bad-input case, the API key, and a schemathesis fuzz run against its own spec."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi", reason="the service extra is not installed (pip install 'rnnface[service]')")
with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette's note about httpx2
    from fastapi.testclient import TestClient

from rnnface.gallery import FaceRecord, open_gallery
from rnnface.service import create_app
from rnnface.settings import Settings
from tests.conftest import assert_no_crash

KEY = {"X-API-Key": "s3cret"}


#: Tests that are not about the time limit give the work all the time a loaded machine needs (the model's first
#: load included); the time-limit tests set their own.
UNHURRIED_S = 600.0


def client(tmp_path: Path, **settings) -> TestClient:
    options = {"api_key": "s3cret", "gallery": str(tmp_path / "g.db"), "request_timeout_s": UNHURRIED_S, **settings}
    return TestClient(create_app(Settings(**options)), raise_server_exceptions=False)


def jpeg(path: Path) -> tuple[str, bytes, str]:
    return (path.name, path.read_bytes(), "image/jpeg")


def png(width: int = 120, height: int = 90) -> tuple[str, bytes, str]:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (128, 128, 128)).save(buf, format="PNG")
    return ("blank.png", buf.getvalue(), "image/png")


@pytest.fixture
def photos(lfw_images: Path) -> dict[str, tuple[str, bytes, str]]:
    return {
        "bush1": jpeg(lfw_images / "George_W_Bush" / "George_W_Bush_0001.jpg"),
        "bush2": jpeg(lfw_images / "George_W_Bush" / "George_W_Bush_0002.jpg"),
        "serena": jpeg(lfw_images / "Serena_Williams" / "Serena_Williams_0001.jpg"),
        "powell": jpeg(lfw_images / "Colin_Powell" / "Colin_Powell_0001.jpg"),
    }


def test_health_ready_page_and_spec(tmp_path):
    c = client(tmp_path)
    assert c.get("/api/v1/health").json()["status"] == "ok"
    ready = c.get("/api/v1/ready").json()
    assert ready["status"] == "ready" and ready["model"].startswith("mobilefacenet_birnn") and ready["people"] == 0
    page = c.get("/")
    assert page.status_code == 200 and "<title>rnnface</title>" in page.text
    assert "http" not in c.get("/static/app.js").text.replace("HTTP ", "")  # nothing loaded from elsewhere
    paths = c.get("/openapi.json").json()["paths"]
    assert {
        "/api/v1/detect",
        "/api/v1/embed",
        "/api/v1/verify",
        "/api/v1/identify",
        "/api/v1/people",
        "/api/v1/people/{name}",
    } <= set(paths)


def test_ready_is_503_without_a_model(tmp_path):
    c = client(tmp_path, model=tmp_path / "missing.pt")
    response = c.get("/api/v1/ready")
    assert response.status_code == 503 and "checkpoint not found" in response.json()["detail"]


def test_face_routes(tmp_path, photos):
    c = client(tmp_path)
    det = c.post("/api/v1/detect", files={"image": photos["serena"]}).json()
    assert det["width"] == 250 and len(det["faces"]) >= 1 and len(det["faces"][0]["landmarks"]) == 5
    emb = c.post("/api/v1/embed", files={"image": photos["serena"]}).json()
    vec = np.array(emb["faces"][0]["embedding"])
    assert vec.shape == (192,) and abs(np.linalg.norm(vec) - 1) < 1e-3
    same = c.post("/api/v1/verify", files={"image_a": photos["bush1"], "image_b": photos["bush1"]}).json()
    assert same["same"] is True and same["similarity"] > 0.99
    diff = c.post(
        "/api/v1/verify", files={"image_a": photos["bush1"], "image_b": photos["serena"]}, data={"threshold": "0.9"}
    ).json()
    assert diff["same"] is False and diff["threshold"] == 0.9


def test_people_enroll_identify_delete(tmp_path, photos):
    c = client(tmp_path)
    response = c.post(
        "/api/v1/people",
        data={"name": "George_W_Bush"},
        files=[("images", photos["bush1"]), ("images", photos["bush2"]), ("images", png())],
        headers=KEY,
    )
    assert response.status_code == 201, response.text
    assert response.json() == {
        "name": "George_W_Bush",
        "faces": 2,
        "already": 0,
        "skipped": [{"image": "upload:blank.png", "reason": "no face"}],
    }
    assert (
        c.post(
            "/api/v1/people", data={"name": "Serena_Williams"}, files=[("images", photos["serena"])], headers=KEY
        ).status_code
        == 201
    )
    listing = c.get("/api/v1/people").json()
    assert [(p["name"], p["faces"]) for p in listing["people"]] == [("George_W_Bush", 2), ("Serena_Williams", 1)]
    assert c.get("/api/v1/people/George_W_Bush").json()["sources"] == [
        "upload:George_W_Bush_0001.jpg",
        "upload:George_W_Bush_0002.jpg",
    ]
    faces = c.post("/api/v1/identify", files={"image": photos["bush1"]}, data={"top_k": "2"}).json()["faces"]
    assert faces[0]["name"] == "George_W_Bush" and [m["person"] for m in faces[0]["matches"]] == [
        "George_W_Bush",
        "Serena_Williams",
    ]
    stranger = c.post("/api/v1/identify", files={"image": photos["powell"]}).json()["faces"]
    assert stranger[0]["name"] == "unknown"
    assert c.delete("/api/v1/people/George_W_Bush", headers=KEY).json() == {"name": "George_W_Bush", "faces": 2}
    assert [p["name"] for p in c.get("/api/v1/people").json()["people"]] == ["Serena_Williams"]


@pytest.mark.parametrize("name", ["unknown", "Unknown", "Ada\nLovelace", "Ada\tL", "Ada\u202eecalevoL", "Ada\u200bL"])
def test_reserved_and_control_character_names_are_refused(tmp_path, photos, name):
    """Reserved names and control or bidi characters are refused at enrollment (422)."""
    c = client(tmp_path)
    response = c.post("/api/v1/people", data={"name": name}, files=[("images", photos["bush1"])], headers=KEY)
    assert response.status_code == 422 and "invalid person name" in response.json()["detail"], response.text
    assert not (tmp_path / "g.db").exists() or _people(tmp_path) == []


def test_names_with_slashes_stay_reachable_and_deletable(tmp_path, photos):
    """A name with `/` is reachable and deletable through /people/{name} (percent-encoded)."""
    c = client(tmp_path)
    for name in ("AC/DC", "../../etc/passwd"):
        assert (
            c.post("/api/v1/people", data={"name": name}, files=[("images", photos["bush1"])], headers=KEY).status_code
            == 201
        )
        quoted = name.replace("/", "%2F")  # what the web page's encodeURIComponent sends
        assert c.get(f"/api/v1/people/{quoted}").json()["faces"] == 1
        assert c.delete(f"/api/v1/people/{quoted}", headers=KEY).json() == {"name": name, "faces": 1}
    assert _people(tmp_path) == []


def _people(tmp_path) -> list[str]:
    with open_gallery(tmp_path / "g.db") as g:
        return [p.name for p in g.people()]


def test_writes_need_the_key_and_change_nothing_without_it(tmp_path, photos):
    c = client(tmp_path)
    assert (
        c.post("/api/v1/people", data={"name": "Serena"}, files=[("images", photos["serena"])], headers=KEY).status_code
        == 201
    )
    for headers in ({}, {"X-API-Key": "wrong"}):
        r = c.post("/api/v1/people", data={"name": "Intruder"}, files=[("images", photos["bush1"])], headers=headers)
        assert r.status_code == 401 and "API key" in r.json()["detail"]
        assert c.delete("/api/v1/people/Serena", headers=headers).status_code == 401
    assert _people(tmp_path) == ["Serena"]
    keyless = client(tmp_path, api_key=None)
    r = keyless.delete("/api/v1/people/Serena", headers=KEY)
    assert r.status_code == 401 and "none configured" in r.json()["detail"]
    assert _people(tmp_path) == ["Serena"]


def test_reads_can_be_keyed(tmp_path, photos):
    c = client(tmp_path, open_reads=False)
    assert c.get("/api/v1/people").status_code == 401
    assert c.post("/api/v1/detect", files={"image": photos["serena"]}).status_code == 401
    assert c.get("/api/v1/people", headers=KEY).status_code == 200
    assert c.get("/api/v1/health").status_code == 200  # liveness stays open


@pytest.mark.parametrize(
    ("case", "status", "message"),
    [
        ("not an image type", 415, "expected an image upload"),
        ("corrupt", 422, "not an image, or an unsupported format"),
        ("truncated", 422, "corrupt or truncated"),
        ("too many bytes", 413, "larger than the limit"),
        ("too many pixels", 413, "over the limit"),
        ("no face", 422, "no face detected"),
        ("bad form value", 422, "top_k"),
        ("missing file", 422, "image"),
    ],
)
def test_bad_uploads(tmp_path, photos, case, status, message):
    c = client(tmp_path, max_upload_bytes=200_000, max_pixels=1_000_000)
    files, data, route = {"image": photos["serena"]}, {}, "/api/v1/identify"
    with open_gallery(tmp_path / "g.db") as g:
        g.enroll("someone", [FaceRecord(np.ones(256, np.float32))], c.get("/api/v1/ready").json()["model"])
    if case == "not an image type":
        files = {"image": ("a.txt", b"hello", "text/plain")}
    elif case == "corrupt":
        files = {"image": ("a.jpg", b"just some text, not pixels", "image/jpeg")}
    elif case == "truncated":
        files = {"image": ("a.jpg", photos["serena"][1][:3000], "image/jpeg")}
    elif case == "too many bytes":
        files = {"image": ("big.png", b"\x89PNG" + bytes(300_000), "image/png")}
    elif case == "too many pixels":
        files = {"image": png(1200, 1000)}
    elif case == "no face":
        files, route = {"image_a": png(), "image_b": photos["serena"]}, "/api/v1/verify"
    elif case == "bad form value":
        data = {"top_k": "0"}
    elif case == "missing file":
        files = {}
    r = c.post(route, files=files, data=data)
    assert r.status_code == status, r.text
    body = r.json()
    assert message in body["detail"] and "Traceback" not in r.text


def test_gallery_errors_map_to_statuses(tmp_path, photos):
    c = client(tmp_path)
    r = c.post("/api/v1/identify", files={"image": photos["serena"]})
    assert r.status_code == 409 and "empty" in r.json()["detail"]
    assert c.get("/api/v1/people/Nobody").status_code == 404
    assert c.delete("/api/v1/people/Nobody", headers=KEY).status_code == 404
    r = c.post("/api/v1/people", data={"name": "Nobody"}, files=[("images", png())], headers=KEY)
    assert r.status_code == 422 and "nothing enrolled" in r.json()["detail"]
    r = c.post("/api/v1/people", data={"name": "Many"}, files=[("images", photos["serena"])] * 9, headers=KEY)
    assert r.status_code == 413 and "at most 8 images" in r.json()["detail"]
    with open_gallery(tmp_path / "other.db") as g:
        g.enroll("someone", [FaceRecord(np.ones(256, np.float32))], "another-model@1")
    other = client(tmp_path, gallery=str(tmp_path / "other.db"))
    r = other.post("/api/v1/identify", files={"image": photos["serena"]})
    assert r.status_code == 409 and "another-model@1" in r.json()["detail"]
    enrolled = other.post("/api/v1/people", data={"name": "Serena"}, files=[("images", photos["serena"])], headers=KEY)
    assert enrolled.status_code == 409
    assert _people(tmp_path) == []


def test_slow_requests_time_out(tmp_path, monkeypatch):
    import threading

    from rnnface.recognition.pipeline import FacePipeline

    release, finished = threading.Event(), threading.Event()

    def stuck(self, image):  # a detection that outlasts the time limit, until the test lets it go
        release.wait()
        finished.set()
        return []

    monkeypatch.setattr(FacePipeline, "detect", stuck)
    c = client(tmp_path, request_timeout_s=0.05)
    r = c.post("/api/v1/detect", files={"image": png()})
    assert r.status_code == 504 and "longer than 0.05 s" in r.json()["detail"]
    release.set()
    assert finished.wait(60)  # the abandoned worker thread ends before the app goes


def test_oversized_body_is_refused_before_reading(tmp_path):
    c = client(tmp_path, max_upload_bytes=1000, max_images=2)
    r = c.post("/api/v1/detect", content=b"x" * 100_000, headers={"content-type": "multipart/form-data; boundary=x"})
    assert r.status_code == 413


@pytest.mark.slow
def test_fuzz_the_spec_finds_no_server_error(tmp_path, lfw_images):
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import HealthCheck, given, settings
    from schemathesis.checks import not_a_server_error

    app = create_app(Settings(api_key="s3cret", gallery=str(tmp_path / "fuzz.db")))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures, statuses = [], []
    for operation in schema.get_all_operations():
        op = operation.ok()

        @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(case=op.as_strategy())
        def check(case):
            response = case.call(headers=KEY)
            statuses.append(response.status_code)
            try:
                case.validate_response(response, checks=[not_a_server_error])
            except Exception as exc:  # collect every failing operation, not just the first
                failures.append(f"{case.operation.label}: {exc}")
                raise

        check()
    assert not failures
    assert len(statuses) >= 60 and max(statuses) < 500 and {200, 422} <= set(statuses)


@pytest.mark.slow
def test_bounded_load_has_no_server_errors(lfw_images):
    """A short version of `rnnface bench service`: a real server, 4 concurrent clients mixing every write and read."""
    from rnnface.lab.benchmarks.service import load_test

    result = load_test(lfw_images, clients=4, seconds=3600, people=6, requests_per_client=8)  # a count, not a clock
    assert result["server_errors"] == 0, result["server_stderr_tail"]
    assert set(result["routes"]) == {"verify", "identify", "enroll"} and result["requests"] == 32
    assert set(result["statuses"]) <= {"200", "201"}, result["statuses"]


@pytest.mark.parametrize(
    "variable, value",
    [("RNNFACE_MAX_UPLOAD_BYTES", "abc"), ("RNNFACE_OPEN_READS", "maybe"), ("RNNFACE_REQUEST_TIMEOUT_S", "-1")],
)
def test_malformed_settings_are_one_line_naming_the_variable(variable, value):
    """A malformed RNNFACE_* variable is one line naming it, exit 2, before the server binds."""
    from typer.testing import CliRunner

    from rnnface.cli import app

    result = CliRunner().invoke(app, ["serve"], env={variable: value})
    assert_no_crash(result)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert (
        len(lines) == 1 and lines[0].startswith("error: malformed setting:") and f"{variable}='{value}'" in lines[0]
    ), result.output


def test_multipart_limit_errors_have_the_error_shape(tmp_path, photos):
    """Starlette's own refusals (multipart limits, 404) answer in the error shape of every other error."""
    c = client(tmp_path)
    big = c.post(
        "/api/v1/people", data={"name": "x" * (1024 * 1024 + 10)}, files=[("images", photos["bush1"])], headers=KEY
    )
    assert big.status_code == 400 and big.json()["type"] == "request" and "maximum size" in big.json()["detail"]
    many = c.post("/api/v1/identify", files=[("image", ("a.png", b"x", "image/png"))] * 1001)
    assert many.status_code in (400, 413) and many.json()["type"] == "request", many.text
    missing = c.get("/api/v1/nowhere")
    assert missing.status_code == 404 and missing.json() == {"detail": "Not Found", "type": "request"}


def test_identify_holds_the_gallery_only_to_search(tmp_path, photos, monkeypatch):
    """Identify holds the gallery only to search: a listing goes through while an identify is still embedding."""
    import threading

    c = client(tmp_path)
    assert (
        c.post("/api/v1/people", data={"name": "Bush"}, files=[("images", photos["bush1"])], headers=KEY).status_code
        == 201
    )
    pipeline = c.app.state.engine.pipeline
    slow, release, real, statuses = threading.Event(), threading.Event(), pipeline.embed, []

    def slow_embed(*args, **kwargs):  # a large photo: embedding lasts until the test releases it
        slow.set()
        release.wait(300)
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline, "embed", slow_embed)
    worker = threading.Thread(target=lambda: c.post("/api/v1/identify", files={"image": photos["bush2"]}))
    worker.start()
    assert slow.wait(120)  # the identify is embedding, and stays there until the listing is done
    listed = threading.Thread(target=lambda: statuses.append(c.get("/api/v1/people").status_code))
    listed.start()
    listed.join(120)  # returns at once unless the listing waits for the identify, which waits for the listing
    blocked = listed.is_alive()
    release.set()
    worker.join()
    listed.join()
    assert not blocked and statuses == [200], (
        "GET /people waited behind an identify that held the gallery while embedding"
    )


def test_no_server_path_in_any_response(tmp_path, photos, lfw_images):
    """No response carries a server path: sources of CLI-enrolled photos and paths in errors go out as file names."""
    from rnnface.gallery.enroll import enroll_images
    from rnnface.recognition import FacePipeline

    c = client(tmp_path)
    empty = c.post("/api/v1/identify", files={"image": photos["bush1"]})
    assert empty.status_code == 409 and "g.db" in empty.json()["detail"]
    with open_gallery(tmp_path / "g.db") as g:  # as `rnnface enroll` does: sources are server paths
        enroll_images(g, FacePipeline(), "George_W_Bush", [lfw_images / "George_W_Bush" / "George_W_Bush_0001.jpg"])
    responses = [
        c.get("/api/v1/people/George_W_Bush"),
        c.post("/api/v1/identify", files={"image": photos["bush2"]}),
        c.get("/api/v1/people/nobody"),
        c.post("/api/v1/identify", files={"image": ("x.png", b"not a png", "image/png")}),
        empty,
    ]
    for r in responses:
        assert str(tmp_path) not in r.text and str(lfw_images) not in r.text, r.text
    assert responses[0].json()["sources"] == ["George_W_Bush_0001.jpg"]
    assert responses[1].json()["faces"][0]["matches"][0]["source"] == "George_W_Bush_0001.jpg"


def test_closed_reads_close_ready_the_spec_and_the_docs_which_load_nothing_from_a_cdn(tmp_path):
    """With RNNFACE_OPEN_READS=false, /ready, /openapi.json and /docs need the key; the docs page serves the Swagger UI
    that ships in a package (a CDN would be blank offline and a third-party script on an admin page)."""
    closed = client(tmp_path, open_reads=False)
    for path in ("/api/v1/ready", "/openapi.json", "/docs"):
        assert closed.get(path).status_code == 401, path
        assert closed.get(path, headers=KEY).status_code == 200, path
    assert closed.get("/api/v1/health").status_code == 200  # liveness tells nothing
    page = client(tmp_path).get("/docs")
    assert (
        page.status_code == 200 and "/openapi.json" in page.text and "http" not in page.text.replace("http-equiv", "")
    )
    for asset in ("/static/swagger/swagger-ui-bundle.js", "/static/swagger/swagger-ui.css"):
        assert client(tmp_path).get(asset).status_code == 200, asset
    assert client(tmp_path).get("/redoc").status_code == 404


def test_every_api_route_but_health_declares_its_access(tmp_path):
    """The body guard and the routes read one declaration: reads and writes are all marked."""
    from rnnface.service.access import access_of

    app = client(tmp_path).app
    for method, path, expected in [
        ("GET", "/api/v1/health", "open"),
        ("GET", "/api/v1/ready", "read"),
        ("POST", "/api/v1/identify", "read"),
        ("GET", "/api/v1/people/a/b", "read"),
        ("POST", "/api/v1/people", "write"),
        ("DELETE", "/api/v1/people/a%2Fb", "write"),
        ("GET", "/openapi.json", "read"),
    ]:
        assert access_of(app, {"type": "http", "path": path, "method": method, "root_path": ""}) == expected, (
            method,
            path,
        )


def test_enroll_skips_every_unusable_photo_by_one_rule(tmp_path, photos, lfw_images):
    """Every unusable upload (not an image, corrupt, no face, several faces) is skipped with its reason in upload
    order, by the CLI's rule; the several-faces reason speaks the API (`largest=true`)."""
    import io as _io

    group = Image.new("RGB", (500, 250))
    group.paste(Image.open(lfw_images / "George_W_Bush" / "George_W_Bush_0001.jpg"), (0, 0))
    group.paste(Image.open(lfw_images / "Serena_Williams" / "Serena_Williams_0001.jpg"), (250, 0))
    buf = _io.BytesIO()
    group.save(buf, format="PNG")
    c = client(tmp_path)
    files = [
        ("images", ("notes.txt", b"hello", "text/plain")),
        ("images", photos["bush1"]),
        ("images", ("broken.png", b"\x89PNG\r\n\x1a\n not really", "image/png")),
        ("images", ("group.png", buf.getvalue(), "image/png")),
        ("images", png()),
    ]
    response = c.post("/api/v1/people", data={"name": "Bush"}, files=files, headers=KEY)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["faces"] == 1 and [s["image"] for s in body["skipped"]] == [
        "upload:notes.txt",
        "upload:broken.png",
        "upload:group.png",
        "upload:blank.png",
    ]
    reasons = [s["reason"] for s in body["skipped"]]
    assert "expected an image" in reasons[0] and reasons[3] == "no face"
    assert "largest=true" in reasons[2] and "--largest" not in reasons[2]
    nothing = c.post(
        "/api/v1/people",
        data={"name": "Nobody"},
        files=[("images", ("notes.txt", b"hello", "text/plain"))],
        headers=KEY,
    )
    assert nothing.status_code == 422 and "nothing enrolled" in nothing.json()["detail"]


def _png16(width: int, height: int) -> tuple[str, bytes, str]:
    data = np.zeros((height, width), np.uint16)
    data[::7, ::3] = 60000
    buf = io.BytesIO()
    Image.fromarray(data).save(buf, format="PNG")
    return ("wide16.png", buf.getvalue(), "image/png")


def test_decoded_bytes_are_limited_from_the_header(tmp_path):
    """The decode limit counts decoded bytes: a tiny 16-bit PNG of 8000x5000 is refused (413) before decoding."""
    upload = _png16(8000, 5000)
    assert len(upload[1]) < 200_000
    c = client(tmp_path, max_decoded_bytes=100_000_000)
    r = c.post("/api/v1/detect", files={"image": upload})
    assert r.status_code == 413 and "bytes to decode, over the limit of 100,000,000" in r.json()["detail"]


def test_concurrent_decodes_are_bounded_and_the_timeout_covers_decoding(tmp_path, monkeypatch):
    """At most `max_concurrent_images` images decode at once, and the request time limit covers decoding (504)."""
    import threading

    from rnnface.service import engine as app_module

    active, peak, lock = [0], [0], threading.Lock()
    real = app_module.load_image

    two, entered, hold, done = threading.Barrier(2), [0], threading.Event(), threading.Event()

    def slow_load(*args, **kwargs):
        """The first two decodes wait for each other (two run at once, and no third may join); the sixth, of the
        hurried request, lasts until the test lets it go."""
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
            entered[0] += 1
            mine = entered[0]
        try:
            if mine <= 2:
                two.wait(120)
            if mine == 6:
                hold.wait(300)
                done.set()
            return real(*args, **kwargs)
        finally:
            with lock:
                active[0] -= 1

    monkeypatch.setattr(app_module, "load_image", slow_load)
    c = client(tmp_path, max_concurrent_images=2)
    statuses = []
    workers = [
        threading.Thread(target=lambda: statuses.append(c.post("/api/v1/detect", files={"image": png()}).status_code))
        for _ in range(5)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join(UNHURRIED_S)
    assert statuses == [200] * 5 and peak[0] == 2, (statuses, peak)
    hurried = client(tmp_path, request_timeout_s=0.2)
    r = hurried.post("/api/v1/detect", files={"image": png()})
    assert r.status_code == 504 and "longer than 0.2 s" in r.json()["detail"]
    hold.set()
    assert done.wait(60)  # the abandoned decode ends before the app goes


def test_read_only_gallery_reads_work_and_writes_are_503(tmp_path, photos, monkeypatch):
    """A read-only gallery answers reads; writes and a misconfigured gallery path are 503 (the server's problem)."""
    import os

    from rnnface.gallery import sqlite as sqlite_module

    c = client(tmp_path)
    assert (
        c.post("/api/v1/people", data={"name": "Bush"}, files=[("images", photos["bush1"])], headers=KEY).status_code
        == 201
    )
    c.app.state.engine.close()
    before = (tmp_path / "g.db").read_bytes()
    real_access = os.access
    monkeypatch.setattr(sqlite_module.os, "access", lambda p, mode: False if mode & os.W_OK else real_access(p, mode))
    ro = client(tmp_path)
    assert [p["name"] for p in ro.get("/api/v1/people").json()["people"]] == ["Bush"]
    assert ro.post("/api/v1/identify", files={"image": photos["bush2"]}).json()["faces"][0]["name"] == "Bush"
    for r in (
        ro.post("/api/v1/people", data={"name": "Serena"}, files=[("images", photos["serena"])], headers=KEY),
        ro.delete("/api/v1/people/Bush", headers=KEY),
    ):
        assert r.status_code == 503 and "read-only" in r.json()["detail"], r.text
    ro.app.state.engine.close()
    assert (tmp_path / "g.db").read_bytes() == before
    monkeypatch.undo()
    (tmp_path / "dir.db").mkdir()
    broken = client(tmp_path, gallery=str(tmp_path / "dir.db"))
    r = broken.get("/api/v1/people")
    assert r.status_code == 503 and "cannot be opened" in r.json()["detail"]


@pytest.mark.parametrize("change", ["deleted", "replaced"])
def test_gallery_deleted_or_replaced_under_the_server(tmp_path, photos, change):
    """A gallery file deleted or replaced under the server: /ready and writes answer 503, nothing is written back."""
    c = client(tmp_path)
    assert (
        c.post("/api/v1/people", data={"name": "Bush"}, files=[("images", photos["bush1"])], headers=KEY).status_code
        == 201
    )
    for suffix in ("", "-wal", "-shm", ".faiss"):
        (tmp_path / f"g.db{suffix}").unlink(missing_ok=True)
    if change == "replaced":
        with open_gallery(tmp_path / "g.db") as other:  # another gallery put in its place
            other.enroll("Other", [FaceRecord(np.eye(512, dtype=np.float32)[0])], "another-model")
        before = {p.name: p.read_bytes() for p in tmp_path.glob("g.db*")}
    assert c.get("/api/v1/ready").status_code == 503
    r = c.post("/api/v1/people", data={"name": "Serena"}, files=[("images", photos["serena"])], headers=KEY)
    assert r.status_code == 503 and "deleted or replaced" in r.json()["detail"], r.text
    assert c.delete("/api/v1/people/Bush", headers=KEY).status_code == 503
    c.app.state.engine.close()
    if change == "deleted":
        assert not any(tmp_path.glob("g.db*"))  # nothing written back, no stray index file
    else:
        assert {p.name: p.read_bytes() for p in tmp_path.glob("g.db*")} == before  # the other gallery untouched


@pytest.fixture
def real_server(tmp_path):
    """A real `rnnface serve` on loopback (the test client would hide chunked and stalled bodies), small limits."""
    from tests.servers import rnnface_serve

    spool = tmp_path / "tmp"
    spool.mkdir()
    env = {
        "RNNFACE_API_KEY": "s3cret",
        "RNNFACE_GALLERY": str(tmp_path / "g.db"),
        "RNNFACE_MAX_UPLOAD_BYTES": "100000",
        "RNNFACE_MAX_IMAGES": "1",
        "RNNFACE_BODY_TIMEOUT_S": "1",
        "RNNFACE_OPEN_READS": "false",
        "TMPDIR": str(spool),
    }
    with rnnface_serve(env) as port:
        yield port, spool


def _raw(port: int, head: str, body_chunks=(), chunked: bool = False, stall: float = 0.0) -> tuple[int, bytes, int]:
    """Send a request by hand; return (status, response, body bytes the server let us send before it answered)."""
    import socket
    import time

    # a generous timeout: the answer comes when the server gives it; a loaded machine only makes it later
    sock = socket.create_connection(("127.0.0.1", port), timeout=120)
    sock.sendall(head.encode())
    sent = 0
    try:
        for chunk in body_chunks:
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
            sent += len(chunk)
        if stall:
            time.sleep(stall)
    except OSError:
        pass  # the server answered and closed while we were still sending: what we want
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except OSError:
        pass
    sock.close()
    return int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0, data, sent


def test_chunked_body_is_cut_off_at_the_limit_and_auth_comes_first(real_server):
    """A chunked body is cut off at the limit (413) without spooling to disk, and the key is checked before the body."""
    port, spool = real_server
    part = b'--b\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\nContent-Type: image/png\r\n\r\n'
    big = (part if i == 0 else b"x" * 65536 for i in range(400))  # a file part of 26 MB, chunked (no Content-Length)
    head = (
        "POST /api/v1/identify HTTP/1.1\r\nHost: x\r\nX-API-Key: s3cret\r\nTransfer-Encoding: chunked\r\n"
        "Content-Type: multipart/form-data; boundary=b\r\n\r\n"
    )
    status, response, sent = _raw(port, head, big, chunked=True)
    assert status == 413 and b"larger than the limit of 165,536 bytes" in response, response[:300]
    assert sent < 16 * 2**20, sent  # stopped well before the end (socket buffers hold a few MB)
    assert not any(spool.rglob("*")), list(spool.rglob("*"))  # nothing spooled to disk
    head = (
        "POST /api/v1/identify HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        "Content-Type: multipart/form-data; boundary=b\r\n\r\n"
    )
    status, response, _ = _raw(port, head, (b"y" * 65536 for _ in range(2)), chunked=True)
    assert status == 401 and b"API key" in response  # decided from the headers, before the body


def test_stalled_body_gets_408(real_server):
    """A body that stops arriving is answered 408 after the body timeout."""

    port, _ = real_server
    head = (
        "POST /api/v1/identify HTTP/1.1\r\nHost: x\r\nX-API-Key: s3cret\r\nContent-Length: 100000\r\n"
        "Content-Type: multipart/form-data; boundary=b\r\n\r\n"
    )
    status, response, _ = _raw(port, head, [b"--b\r\n" + b"z" * 1000], stall=0.1)
    assert status == 408 and b"not received within 1 s" in response, response[:300]


class DecodedCounter:
    """Counts the images the service decodes and how many are alive at once (`peak`), by patching its loader."""

    def __init__(self, monkeypatch) -> None:
        import threading
        import weakref

        from rnnface.service import engine as engine_module

        self.alive = self.peak = self.decoded = 0
        self._lock = threading.Lock()
        real_load = engine_module.load_image

        def counting_load(*args, **kwargs):
            image = real_load(*args, **kwargs)
            with self._lock:
                self.alive += 1
                self.decoded += 1
                self.peak = max(self.peak, self.alive)
            weakref.finalize(image, self._gone)
            return image

        monkeypatch.setattr(engine_module, "load_image", counting_load)

    def _gone(self) -> None:
        with self._lock:
            self.alive -= 1


@pytest.mark.slow
def test_decoded_images_are_bounded_while_they_wait_for_detection(tmp_path, monkeypatch):
    """Sixteen requests of a small file of many pixels at once: at most `max_concurrent_images` decoded images exist
    at any time, the others wait undecoded (decoding alone was bounded, not the decoded images queuing for the
    detector: the server grew to gigabytes)."""
    import threading

    from rnnface.recognition.pipeline import FacePipeline

    big = io.BytesIO()
    Image.new("RGB", (3000, 3000), (90, 120, 150)).save(big, format="PNG")  # 27 MB decoded, tens of KB on the wire
    assert len(big.getvalue()) < 200_000
    c = client(tmp_path, max_concurrent_images=2)
    engine = c.app.state.engine
    counter = DecodedCounter(monkeypatch)

    def held_detect(self, image):  # the detector is busy until every request is in: decoded, or waiting for a slot
        waiting = getattr(getattr(engine, "slots", None), "waiting", 0)
        while counter.decoded + waiting < 16:
            threading.Event().wait(0.01)
            waiting = getattr(getattr(engine, "slots", None), "waiting", 0)
        return []

    monkeypatch.setattr(FacePipeline, "detect", held_detect)
    statuses = []
    files = {"image": ("big.png", big.getvalue(), "image/png")}
    workers = [
        threading.Thread(target=lambda: statuses.append(c.post("/api/v1/detect", files=files).status_code))
        for _ in range(16)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert statuses == [200] * 16 and counter.decoded == 16
    assert counter.peak <= 2, f"{counter.peak} decoded images held at once"


def test_a_trickled_body_is_cut_off_by_one_deadline_for_the_whole_body(real_server):
    """One byte every fifth of a second keeps each wait under the 1 s body timeout; the deadline covers the whole
    body, so the server answers 408 while the client is still trickling."""
    import select
    import socket

    port, _ = real_server
    head = (
        "POST /api/v1/identify HTTP/1.1\r\nHost: x\r\nX-API-Key: s3cret\r\nContent-Length: 90000\r\n"
        "Content-Type: multipart/form-data; boundary=b\r\n\r\n"
        '--b\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\nContent-Type: image/png\r\n\r\n'
    )
    sock = socket.create_connection(("127.0.0.1", port), timeout=120)
    sock.sendall(head.encode())
    trickled, reset = 0, False
    try:
        for _ in range(300):  # a minute of trickling at most
            if select.select([sock], [], [], 0.2)[0]:  # the server answered
                break
            sock.sendall(b"x")
            trickled += 1
        response = b""
        while chunk := sock.recv(4096):  # the answer closes the connection: read it to its end
            response += chunk
    except (ConnectionResetError, BrokenPipeError):
        # A byte sent in the instant between the server's answer and its close makes the server's kernel reset the
        # connection, and the reset can discard the answer before it is read: any client that keeps sending sees
        # this race. The cut-off itself is what must hold.
        reset = True
    sock.close()
    assert trickled < 300, "the server waited for the whole trickle"
    if not reset:
        assert response.startswith(b"HTTP/1.1 408") and b"not received within 1 s" in response, response[:200]


def test_an_answer_before_the_body_is_all_in_closes_the_connection(real_server):
    """A request refused while its body is still arriving (here: too many files, mid-body) is answered with
    `connection: close`, so the rest of its body is not read on and on."""
    import socket

    port, _ = real_server
    parts = b"".join(
        b'--b\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\nContent-Type: image/png\r\n\r\nx\r\n'
        for _ in range(1200)
    )
    head = (
        "POST /api/v1/identify HTTP/1.1\r\nHost: x\r\nX-API-Key: s3cret\r\nTransfer-Encoding: chunked\r\n"
        "Content-Type: multipart/form-data; boundary=b\r\n\r\n"
    )
    sock = socket.create_connection(("127.0.0.1", port), timeout=120)
    sock.sendall(head.encode() + b"%x\r\n%s\r\n" % (len(parts), parts))  # the body goes on: no final chunk yet
    response = b""
    while b"\r\n\r\n" not in response:
        chunk = sock.recv(4096)
        if not chunk:
            break
        response += chunk
    sock.close()
    status_line, _, headers = response.partition(b"\r\n")
    assert status_line.split()[1] in (b"400", b"413"), response[:300]
    assert b"connection: close" in headers.lower(), response[:300]


def test_thresholds_by_name_detection_choices_and_the_search_threshold(tmp_path, photos, calibrated_model):
    """The service takes what the CLI takes: an operating point by name or number (refused before any upload
    is read when it is neither), detection limits, no detection; identify says which threshold named a face."""
    c = client(tmp_path, model=calibrated_model)
    files = {"image_a": photos["bush1"], "image_b": photos["bush2"]}
    strict = c.post("/api/v1/verify", files=files, data={"threshold": "strict"}).json()
    default = c.post("/api/v1/verify", files=files).json()
    assert (strict["point"], default["point"]) == ("strict", "balanced") and strict["threshold"] > default["threshold"]
    assert strict["far"] == pytest.approx(1e-4) and default["far"] == pytest.approx(1e-3)
    bad = c.post("/api/v1/verify", files=files, data={"threshold": "medium"})
    assert bad.status_code == 422 and "strict (FAR 1e-4), balanced" in bad.json()["detail"]
    assert c.post("/api/v1/people", headers=KEY, data={"name": "Bush"}, files=[("images", photos["bush1"])]).is_success
    found = c.post("/api/v1/identify", files={"image": photos["bush2"]}).json()["faces"][0]
    assert found["point"] == "search" and found["comparisons"] == 1 and found["fpir"] == 0.01
    named = c.post("/api/v1/identify", files={"image": photos["bush2"]}, data={"threshold": "0.99"}).json()
    assert named["faces"][0]["name"] == "unknown" and named["faces"][0]["point"] == "given"
    none = c.post("/api/v1/detect", files={"image": photos["bush1"]}, data={"min_face": 4000}).json()
    assert none["faces"] == []
    whole = c.post("/api/v1/embed", files={"image": png()}, data={"no_detect": "true"}).json()
    assert [f["box"] for f in whole["faces"]] == [[0.0, 0.0, 120.0, 90.0]]


def test_cluster_groups_uploads_and_kept_groups_grow_and_take_a_name(tmp_path, lfw_images):
    c = client(tmp_path)
    powell = [jpeg(lfw_images / "Colin_Powell" / f"Colin_Powell_{n:04d}.jpg") for n in range(1, 5)]
    serena = [jpeg(lfw_images / "Serena_Williams" / f"Serena_Williams_{n:04d}.jpg") for n in range(1, 4)]
    files = [("images", f) for f in powell + serena] + [("images", ("notes.jpg", b"not a photo", "image/jpeg"))]
    result = c.post("/api/v1/cluster", files=files, data={"threshold": "balanced"})
    assert result.status_code == 200, result.text
    body = result.json()
    groups = [{m["image"].rsplit("_", 1)[0] for m in g["members"]} for g in body["groups"]]
    assert groups == [{"Colin_Powell"}, {"Serena_Williams"}] and body["point"] == "balanced"
    assert body["rho"] == 0.7 and abs(body["background"]) < 0.1  # pooled about the model's own background
    assert [s["image"] for s in body["skipped"]] == ["notes.jpg"] and "/" not in result.text.replace("</", "")
    assert _people(tmp_path) == []  # grouping stores nothing
    assert c.post("/api/v1/clusters", files=files[:3]).status_code == 401  # keeping writes: the key
    kept = c.post("/api/v1/clusters", files=files[:3] + files[-1:], data={"threshold": "balanced"}, headers=KEY).json()
    assert {f["group"] for f in kept["faces"]} == {"unknown #1"} and all(f["new_group"] for f in kept["faces"])
    assert kept["skipped"] == [{"image": "notes.jpg", "reason": body["skipped"][0]["reason"]}]
    for route, headers in (("/api/v1/cluster", {}), ("/api/v1/clusters", KEY)):  # nothing readable: bad input
        response = c.post(route, files=files[-1:] * 2, headers=headers)
        assert response.status_code == 422 and "none of the 2 photo(s) could be read" in response.json()["detail"]
    more = c.post("/api/v1/clusters", files=files[3:4], data={"threshold": "balanced"}, headers=KEY).json()
    assert more["faces"][0]["group"] == "unknown #1" and not more["faces"][0]["new_group"]
    listed = c.get("/api/v1/people").json()["people"]
    assert listed == [{"name": "unknown #1", "faces": 4, "crops_kept": 0, "unnamed": True}]
    named = c.post("/api/v1/clusters/1/name", data={"name": "Colin Powell"}, headers=KEY)
    assert named.status_code == 200 and named.json() == {"group": "unknown #1", "name": "Colin Powell", "faces": 4}
    for path, data, status in (
        ("/api/v1/clusters/1/name", {"name": "Bob"}, 404),  # no such group any more
        ("/api/v1/clusters/x/name", {"name": "Bob"}, 422),
        ("/api/v1/clusters/2/name", {"name": "1"}, 404),
    ):
        response = c.post(path, data=data, headers=KEY)
        assert response.status_code == status, (path, response.text)
    too_many = [("images", powell[0])] * 9
    assert c.post("/api/v1/cluster", files=too_many).status_code == 413
    assert _people(tmp_path) == ["Colin Powell"]
    face_id = kept["faces"][0]["face_id"]
    assert sorted(f["face_id"] for f in kept["faces"] + more["faces"]) == list(range(face_id, face_id + 4))
    assert c.post(f"/api/v1/faces/{face_id}/split").status_code == 401
    split = c.post(f"/api/v1/faces/{face_id}/split", headers=KEY)
    assert split.status_code == 200 and split.json() == {
        "face_id": face_id,
        "was": "Colin Powell",
        "group": "unknown #1",
    }
    for path, status in (
        (f"/api/v1/faces/{face_id}/split", 422),
        ("/api/v1/faces/999999/split", 404),
        ("/api/v1/faces/-3/split", 422),
        (f"/api/v1/faces/{2**64}/split", 422),
    ):
        response = c.post(path, headers=KEY)
        assert response.status_code == status and "/" not in response.json()["detail"].replace("/api", ""), (
            path,
            response.text,
        )
    assert _people(tmp_path) == ["Colin Powell", "unknown #1"]  # the lowest free number


LOOK_ALIKES = ["unkn\u03bfwn #5", "unkn\u043ewn #1", "unkn0wn #2", "\uff55nknown #3", "UNKNOWN #S"]  # Greek, Cyrillic


def test_look_alikes_of_unnamed_groups_are_refused_by_the_served_routes(tmp_path, photos):
    """issue 31 §4: a name that reads as `unknown #k` (Greek or Cyrillic letters, digits for letters, fullwidth)
    is refused by POST /people and POST /clusters/{k}/name on a real server; nothing is stored under it."""
    import httpx

    from tests.servers import rnnface_serve

    with rnnface_serve({"RNNFACE_API_KEY": "s3cret", "RNNFACE_GALLERY": str(tmp_path / "g.db")}) as port:
        url = f"http://127.0.0.1:{port}/api/v1"
        pair = [("images", photos["bush1"]), ("images", photos["bush2"])]
        kept = httpx.post(f"{url}/clusters", files=pair, data={"threshold": "balanced"}, headers=KEY, timeout=300)
        assert kept.status_code == 200 and kept.json()["faces"][0]["group"] == "unknown #1", kept.text
        for name in LOOK_ALIKES:
            enrolled = httpx.post(
                f"{url}/people", data={"name": name}, files=[("images", photos["serena"])], headers=KEY, timeout=300
            )
            assert enrolled.status_code == 422 and "reserved for groups" in enrolled.json()["detail"], enrolled.text
            named = httpx.post(f"{url}/clusters/1/name", data={"name": name}, headers=KEY, timeout=300)
            assert named.status_code == 422 and "reserved for groups" in named.json()["detail"], named.text
    assert _people(tmp_path) == ["unknown #1"]


def test_a_request_answered_504_decodes_none_of_its_remaining_frames(tmp_path, monkeypatch):
    """issue 31 §6: once a read has its 504, its worker thread stops before the next frame (it went on decoding
    and detecting for minutes). Deterministic: the first frame is held until the answer has gone out."""
    import threading

    from rnnface.liveness.check import LivenessChecker
    from rnnface.service import routes
    from rnnface.service.engine import DeadlineExpired

    c = client(tmp_path, request_timeout_s=0.2)
    answered, finished, seen, outcome = threading.Event(), threading.Event(), [], []

    def held_observe(self, frame, index, embed=False):
        seen.append(index)
        if index == 0:
            assert answered.wait(600)  # the request's 504 is out before the first frame is done
        return None

    real_observe_frames = routes.observe_frames

    def recorded(*args, **kwargs):
        try:
            return real_observe_frames(*args, **kwargs)
        except Exception as exc:
            outcome.append(exc)
            raise
        finally:
            finished.set()

    monkeypatch.setattr(LivenessChecker, "observe", held_observe)
    monkeypatch.setattr(routes, "observe_frames", recorded)
    frames = [("frames", png()) for _ in range(8)]
    response = c.post("/api/v1/liveness", files=frames)
    assert response.status_code == 504, response.text
    answered.set()
    assert finished.wait(600)
    assert seen == [0] and len(outcome) == 1 and isinstance(outcome[0], DeadlineExpired)


@pytest.mark.parametrize(
    "route, field, form",
    [("/api/v1/liveness", "frames", {}), ("/api/v1/verify", None, {}), ("/api/v1/cluster", "images", {})],
)
def test_a_request_of_several_images_holds_one_decoded_image_at_a_time(tmp_path, monkeypatch, route, field, form):
    """issue 31 §5: with one image slot, a request of several images never has two decoded at once (a caller's
    variable kept the previous one alive while the next decoded in a new slot: twice the stated bound)."""
    c = client(tmp_path, max_concurrent_images=1)
    counter = DecodedCounter(monkeypatch)
    files = [("image_a", png()), ("image_b", png())] if field is None else [(field, png())] * 4
    response = c.post(route, files=files, data=form)
    assert response.status_code in (200, 422), response.text  # grey frames hold no face: that is not the point
    assert counter.peak == 1, f"{counter.peak} decoded images held at once"


def test_a_clustering_run_groups_and_keeps_a_selection_sent_in_batches_as_one_set(tmp_path, lfw_images):
    """More photos than one request takes, sent in batches to one run, are grouped as one set; kept, a same-person
    pair split across batches lands in one group (batch by batch, each of its faces was left alone)."""
    c = client(tmp_path, cluster_run_faces=10, cluster_runs=2)
    powell = [jpeg(lfw_images / "Colin_Powell" / f"Colin_Powell_{n:04d}.jpg") for n in range(1, 7)]
    serena = [jpeg(lfw_images / "Serena_Williams" / f"Serena_Williams_{n:04d}.jpg") for n in range(1, 5)]
    junk = ("notes.jpg", b"not a photo", "image/jpeg")

    def start() -> str:
        response = c.post("/api/v1/cluster/runs")
        assert response.status_code == 201, response.text
        return response.json()["run"]

    def send(run: str, *photos) -> dict:
        response = c.post(f"/api/v1/cluster/runs/{run}/photos", files=[("images", p) for p in photos])
        assert response.status_code == 200, response.text
        return response.json()

    run = start()
    assert send(run, *powell[:4], *serena)["faces"] == 8
    second = send(run, *powell[4:], junk)
    assert (second["photos"], second["faces"], second["added"]) == (11, 10, 2)
    assert [s["image"] for s in second["skipped"]] == ["notes.jpg"]
    full = c.post(f"/api/v1/cluster/runs/{run}/photos", files=[("images", powell[0])])
    assert full.status_code == 413 and "at most 10 faces" in full.json()["detail"]
    grouped = c.post(f"/api/v1/cluster/runs/{run}/groups", data={"threshold": "balanced"})
    assert grouped.status_code == 200, grouped.text
    body = grouped.json()
    people = [sorted(m["image"].rsplit("_", 1)[0] for m in g["members"]) for g in body["groups"]]
    assert people == [["Colin_Powell"] * 6, ["Serena_Williams"] * 4] and body["faces"] == 10
    assert [s["image"] for s in body["skipped"]] == ["notes.jpg"] and _people(tmp_path) == []
    for again in ("groups", "photos"):  # grouping ended the run
        assert c.post(f"/api/v1/cluster/runs/{run}/{again}", files=[("images", powell[0])]).status_code == 404

    # the pair split across batches: request by request, neither Powell photo has a partner, so neither is kept
    for batch in ([powell[0], serena[0], serena[1]], [powell[1], junk]):
        c.post("/api/v1/clusters", files=[("images", p) for p in batch], data={"threshold": "balanced"}, headers=KEY)
    assert _people(tmp_path) == ["unknown #1"]  # Serena's pair only
    c.delete("/api/v1/people/unknown #1", headers=KEY)
    run, other = start(), start()
    assert c.post("/api/v1/cluster/runs").status_code == 429  # cluster_runs = 2 are open
    assert c.delete(f"/api/v1/cluster/runs/{other}").status_code == 204
    for batch in ([powell[0], serena[0], serena[1]], [powell[1], junk]):
        send(run, *batch)
    assert c.post(f"/api/v1/cluster/runs/{run}/keep").status_code == 401  # keeping writes: the key; the run stays
    kept = c.post(f"/api/v1/cluster/runs/{run}/keep", data={"threshold": "balanced"}, headers=KEY)
    assert kept.status_code == 200, kept.text
    groups = {}
    for face in kept.json()["faces"]:
        groups.setdefault(face["group"], []).append(face["image"].rsplit("_", 1)[0])
    assert sorted(groups.values()) == [["Colin_Powell"] * 2, ["Serena_Williams"] * 2] and None not in groups
    assert sorted(_people(tmp_path)) == ["unknown #1", "unknown #2"]
    assert c.post(f"/api/v1/cluster/runs/{run}/keep", headers=KEY).status_code == 404  # kept once only
    assert c.post("/api/v1/cluster/runs/nope/groups").status_code == 404


def test_an_idle_clustering_run_is_dropped():
    from rnnface.service.errors import HttpError
    from rnnface.service.runs import ClusterRuns

    now = [0.0]
    runs = ClusterRuns(max_runs=1, max_faces=5, idle_s=60, clock=lambda: now[0])
    token = runs.start()
    now[0] = 59.0
    runs.check(token)  # in use: its idle time starts again
    now[0] = 118.0
    assert runs.add(token, 1, [], []).photos == 1
    now[0] = 179.0
    with pytest.raises(HttpError, match="no such clustering run"):
        runs.take(token)
    assert runs.start() != token  # its place is free again


def test_a_challenge_is_used_once_expires_and_the_open_ones_are_bounded(monkeypatch):
    from rnnface.service import challenges
    from rnnface.service.errors import HttpError

    now = [0.0]
    store = challenges.Challenges(2, 60, clock=lambda: now[0], draw=lambda n: ("left",) * n)
    first, second = store.issue(), store.issue()
    assert first.turns == ("left", "left") and first.token != second.token and len(first.token) >= 24
    assert store.redeem(first.token) == ("left", "left")
    with pytest.raises(HttpError, match="unknown, used or expired") as used:
        store.redeem(first.token)
    assert used.value.status == 403
    now[0] = 60.0  # second's last moment has passed
    with pytest.raises(HttpError, match="unknown, used or expired"):
        store.redeem(second.token)
    monkeypatch.setattr(challenges, "MAX_OPEN", 3)
    kept = [store.issue() for _ in range(3)]
    with pytest.raises(HttpError, match="3 challenges are open") as full:
        store.issue()
    assert full.value.status == 429
    store.redeem(kept[0].token)  # a used one makes room, as an expired one does
    store.issue()
    now[0] += 60.0
    assert len({store.issue().token for _ in range(3)}) == 3
