"""The web page in headless Chromium (Playwright): enroll two LFW people, identify, verify, delete; screenshots kept.

Needs Debian's chromium (/usr/bin/chromium, or RNNFACE_CHROMIUM); skipped with the reason when it cannot start.
Screenshots go to test-artifacts/ (or $RNNFACE_ARTIFACTS).
"""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the service extra is not installed")
playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
uvicorn = pytest.importorskip("uvicorn")

from rnnface.service import create_app  # noqa: E402
from rnnface.settings import Settings  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.slow]
REPO = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("RNNFACE_CHROMIUM", "/usr/bin/chromium")
# As root in a closed network: no sandbox, and no background calls home that the network would refuse.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def server(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(Settings(api_key="browser-key", gallery=str(tmp_path / "g.db"), request_timeout_s=600))
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    while not srv.started:  # up when uvicorn says so; a server thread that dies instead fails the test at once
        assert thread.is_alive(), "the server thread ended before the server started"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=30)


@pytest.fixture
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium, or set RNNFACE_CHROMIUM)")
    with playwright_api.sync_playwright() as p:
        try:
            b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        except Exception as exc:  # a browser that cannot start here is a skip, with the reason
            pytest.skip(f"Chromium at {CHROMIUM} cannot start: {exc}")
        # the page waits on real detection and embedding: on a loaded machine that can outlast expect's 5 s
        # default, so assertions wait for their outcome far longer (a wrong outcome still fails, only later)
        playwright_api.expect.set_options(timeout=300_000)
        yield b
        b.close()


def test_enroll_identify_verify_delete_in_the_page(server, browser, lfw_images):
    shots = Path(os.environ.get("RNNFACE_ARTIFACTS", REPO / "test-artifacts"))
    shots.mkdir(parents=True, exist_ok=True)
    bush = [str(lfw_images / "George_W_Bush" / f"George_W_Bush_000{i}.jpg") for i in (1, 2, 3)]
    serena = [str(lfw_images / "Serena_Williams" / "Serena_Williams_0001.jpg")]
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(server + "/")
    playwright_api.expect(page.locator("#status")).to_contain_text("service ok")

    page.fill("#api-key", "browser-key")
    page.dispatch_event("#api-key", "change")
    for name, files in (("George_W_Bush", bush[:2]), ("Serena_Williams", serena)):
        page.fill("#enroll-name", name)
        page.set_input_files("#enroll-files", files)
        page.click("#enroll-form button[type=submit]")
        playwright_api.expect(page.locator("#enroll-result")).to_contain_text(f"enrolled {name}")
    playwright_api.expect(page.locator("#people-list tr")).to_have_count(2)

    page.set_input_files("#identify-file", bush[0])
    page.click("#identify-form button[type=submit]")
    playwright_api.expect(page.locator("#identify-result li").first).to_have_attribute("data-name", "George_W_Bush")
    assert page.eval_on_selector("#identify-canvas", "c => c.width") == 250  # the photo was drawn with its boxes

    page.set_input_files("#verify-a", bush[0])
    page.set_input_files("#verify-b", serena[0])
    page.click("#verify-form button[type=submit]")
    playwright_api.expect(page.locator("#verify-result")).to_contain_text("different people")
    playwright_api.expect(page.locator("#verify-result")).to_contain_text("threshold")
    page.screenshot(path=str(shots / "web-page.png"), full_page=True)

    page.click("#people-list tr[data-name=Serena_Williams] button")
    playwright_api.expect(page.locator("#people-list tr")).to_have_count(1)
    playwright_api.expect(page.locator("#people-list tr").first).to_have_attribute("data-name", "George_W_Bush")
    page.screenshot(path=str(shots / "web-page-after-delete.png"), full_page=True)

    page.fill("#api-key", "wrong")
    page.fill("#enroll-name", "Intruder")
    page.set_input_files("#enroll-files", serena)
    page.click("#enroll-form button[type=submit]")
    playwright_api.expect(page.locator("#enroll-result")).to_contain_text("missing or wrong API key")
    playwright_api.expect(page.locator("#people-list tr")).to_have_count(1)


def test_the_page_groups_photos_keeps_the_groups_and_names_one(server, browser, lfw_images):
    shots = Path(os.environ.get("RNNFACE_ARTIFACTS", REPO / "test-artifacts"))
    shots.mkdir(parents=True, exist_ok=True)
    powell = [str(lfw_images / "Colin_Powell" / f"Colin_Powell_{n:04d}.jpg") for n in range(1, 7)]
    serena = [str(lfw_images / "Serena_Williams" / f"Serena_Williams_{n:04d}.jpg") for n in range(1, 5)]
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.goto(server + "/")
    playwright_api.expect(page.locator("#status")).to_contain_text("service ok")

    def upload(path: str) -> dict:
        return {"name": Path(path).name, "mimeType": "image/jpeg", "buffer": Path(path).read_bytes()}

    junk = [{"name": f"notes-{n}.jpg", "mimeType": "image/jpeg", "buffer": b"not a photo"} for n in range(8)]
    # 11 files, more than one request takes: one clustering run, two batches, grouped as one set
    page.set_input_files("#cluster-files", [upload(p) for p in powell + serena] + junk[:1])
    page.click("#cluster-go")
    playwright_api.expect(page.locator("#cluster-result")).to_contain_text("10 face(s), 2 group(s)")
    playwright_api.expect(page.locator("#cluster-result")).to_contain_text("skipped notes-0.jpg: ")
    playwright_api.expect(page.locator("#cluster-groups .sheet canvas")).to_have_count(10)  # a thumbnail a face

    page.fill("#api-key", "browser-key")
    page.dispatch_event("#api-key", "change")
    page.check("#cluster-keep")
    # a batch of 8 that are not photos (each listed), then 10 photos in two more batches, kept as one set
    page.set_input_files("#cluster-files", junk + [upload(p) for p in powell + serena])
    page.click("#cluster-go")
    playwright_api.expect(page.locator("#cluster-result")).to_contain_text("18 photo(s) sent to the gallery")
    playwright_api.expect(page.locator("#cluster-result")).to_contain_text("skipped notes-7.jpg: ")
    cards = page.locator("#cluster-groups .sheet[data-group^='unknown #']")
    playwright_api.expect(cards).to_have_count(2)
    assert sorted(int(cards.nth(i).get_attribute("data-size")) for i in range(2)) == [4, 6]
    playwright_api.expect(page.locator("#people-list tr")).to_have_count(2)
    page.screenshot(path=str(shots / "web-page-clusters.png"), full_page=True)
    six = page.locator("#cluster-groups .sheet[data-size='6']")
    six.locator("input").first.fill("Colin Powell")
    six.locator("button", has_text="Name").click()
    playwright_api.expect(six.locator("p")).to_contain_text("Colin Powell: 6 face(s) (named)")
    playwright_api.expect(page.locator("#people-list tr[data-name='Colin Powell']")).to_have_count(1)
    four = page.locator("#cluster-groups .sheet[data-size='4']")
    playwright_api.expect(four.locator("button.split")).to_have_count(4)  # every stored face can be split off
    four.locator("button.split").first.click()
    playwright_api.expect(four.locator("figcaption")).to_have_text(["now unknown #3"])
    playwright_api.expect(four.locator("p")).to_contain_text(": 3 face(s)")
    playwright_api.expect(page.locator("#people-list tr[data-name='unknown #3']")).to_have_count(1)
    playwright_api.expect(page.locator("#people-list tr")).to_have_count(3)
    page.screenshot(path=str(shots / "web-page-clusters-split.png"), full_page=True)


def test_the_page_keeps_the_key_for_the_tab_only_and_forgets_it_on_request(server, browser):
    page = browser.new_page()
    page.goto(server + "/")
    page.fill("#api-key", "s3cret")
    page.dispatch_event("#api-key", "change")
    stored = page.evaluate("() => [localStorage.getItem('rnnface-api-key'), sessionStorage.getItem('rnnface-api-key')]")
    assert stored == [None, "s3cret"]  # never in localStorage, which outlives the tab on disk
    page.reload()
    assert page.input_value("#api-key") == "s3cret"  # the same tab keeps it
    page.click("#forget-key")
    assert (
        page.input_value("#api-key") == "" and page.evaluate("() => sessionStorage.getItem('rnnface-api-key')") is None
    )
    fresh = browser.new_page()  # another tab (context pages share storage only for local, not session, storage)
    fresh.goto(server + "/")
    assert fresh.input_value("#api-key") == ""


def camera_browser(playwright, clip: Path):
    """Chromium whose camera is Chromium's fake device playing `clip` (Y4M, in a loop), permission granted."""
    args = [
        *CHROMIUM_ARGS,
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-video-capture={clip}",
    ]
    try:
        return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
    except Exception as exc:
        pytest.skip(f"Chromium at {CHROMIUM} cannot start: {exc}")


def test_webcam_authentication_asks_for_a_head_turn_and_refuses_a_clip_without_one(server, tmp_path, nuaa_root):
    """The page's webcam panel: it asks the person to turn their head, films a few seconds and posts the frames to
    /authenticate. The fake camera plays a live NUAA capture of the enrolled person (who does not turn: refused,
    as a replayed clip would be), then a print of them moved before the camera (refused)."""
    import cv2

    from rnnface.gallery import open_gallery
    from rnnface.gallery.enroll import enroll_images
    from rnnface.recognition.pipeline import FacePipeline
    from tests.clips import capture_frames, write_y4m
    from tests.test_authenticate import ATTACK, CLIP, ENROLL, LIVE, PERSON

    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium, or set RNNFACE_CHROMIUM)")
    shots = Path(os.environ.get("RNNFACE_ARTIFACTS", REPO / "test-artifacts"))
    shots.mkdir(parents=True, exist_ok=True)
    photos = []
    for i, frame in enumerate(capture_frames(nuaa_root, LIVE, ENROLL)):
        photos.append(tmp_path / f"enroll{i}.png")
        cv2.imwrite(str(photos[-1]), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    with open_gallery(tmp_path / "g.db") as g:  # the server's gallery, before its first request opens it
        enroll_images(g, FacePipeline(), PERSON, photos)
    with playwright_api.sync_playwright() as p:
        for key, decision, shot in (
            (LIVE, "rejected: not live", "webcam-live.png"),
            (ATTACK, "rejected: not live", "webcam-print.png"),
        ):
            clip = write_y4m(capture_frames(nuaa_root, key, CLIP), tmp_path / f"{shot}.y4m")
            browser = camera_browser(p, clip)
            page = browser.new_page(viewport={"width": 1280, "height": 1100})
            page.goto(server + "/")
            page.fill("#auth-name", PERSON)
            page.click("#auth-go")
            # the server's challenge: a side of its choosing, asked for once the person has looked at the camera
            turn = re.compile(r"Turn your head slowly to your (left|right), and back")
            playwright_api.expect(page.locator("#auth-prompt")).to_contain_text(turn)
            result = page.locator("#auth-result")
            playwright_api.expect(result).to_have_attribute("data-decision", decision, timeout=300_000)
            playwright_api.expect(result).to_contain_text("identity: similarity")
            playwright_api.expect(result).to_contain_text("head turn not seen")
            playwright_api.expect(result).to_contain_text(
                re.compile(r"asked (left|right), then (left|right); seen none")
            )
            page.screenshot(path=str(shots / shot), full_page=True)
            browser.close()
