"""The example's media library in a real browser: headless Chromium driven by Selenium.

Debian's ``chromium`` and ``chromium-driver`` (``/usr/bin/chromium``,
``/usr/bin/chromedriver``; ``.ci/run`` installs them), the driver given to
Selenium by its path, so that Selenium Manager never runs (it would look for,
or download, a driver of its own). The example runs as in
``test_example_library``: gunicorn with the library's worker, its access log
on, the sample media of ``prepare_media``. What a person sees:

- every thumbnail of the gallery decodes, in the width of the ``srcset`` that
  the column needs at the device's pixel ratio, and not one step more (three
  viewports across the grid's breakpoints, one at a pixel ratio of 2);
- a file uploaded through the form (its progress bar, then the page that polls
  the background save) appears in the gallery with its thumbnail;
- the video plays and seeks to its middle, by range requests (``206`` in the
  access log); the sound plays; a PDF's page previews show;
- screenshots of the gallery and a detail page, saved in ``FILERESPONSE_ARTIFACTS``
  (``tests/artifacts/`` by default); with ``FILERESPONSE_SAVE_SCREENSHOTS=1`` they
  also refresh ``docs/images/`` (the README shows the gallery).
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from selenium import webdriver
from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.selenium_manager import SeleniumManager
from selenium.webdriver.support.wait import WebDriverWait

from tests.example import REPO_ROOT
from tests.queues import wait_for
from tests.test_example_library import Example, example_server

from PIL import Image  # isort: skip  (after test_example_library's importorskip)

CHROMIUM = Path(os.environ.get("FILERESPONSE_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("FILERESPONSE_CHROMEDRIVER", "/usr/bin/chromedriver"))
ARTIFACTS = Path(os.environ.get("FILERESPONSE_ARTIFACTS") or REPO_ROOT / "tests" / "artifacts")
DOCS_IMAGES = REPO_ROOT / "docs" / "images"
#: The width of the screenshots, in CSS pixels at a pixel ratio of 1.
SCREENSHOT_WIDTH = 1200
WAIT = 20


def executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


MISSING = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not executable(path)]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.live,
    pytest.mark.skipif(
        bool(MISSING),
        reason=f"no Chromium here ({', '.join(MISSING)} missing): "
        "apt-get install chromium chromium-driver (Debian's), as .ci/run does",
    ),
]


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Example]:
    with example_server(tmp_path_factory.mktemp("browser")) as running:
        yield running


@pytest.fixture(scope="module")
def browser(monkeypatch_module: pytest.MonkeyPatch) -> Iterator[webdriver.Chrome]:
    # Selenium Manager resolves and may download drivers and browsers: never here.
    monkeypatch_module.setenv("SE_OFFLINE", "true")

    def no_manager(*args: object) -> None:
        raise AssertionError("Selenium Manager was called: the driver must come by its path")

    monkeypatch_module.setattr(SeleniumManager, "binary_paths", no_manager)
    options = Options()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",  # root in CI
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--autoplay-policy=no-user-gesture-required",
        "--mute-audio",
        "--hide-scrollbars",
        f"--window-size={SCREENSHOT_WIDTH},900",
    ):
        options.add_argument(argument)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    service = Service(
        executable_path=str(CHROMEDRIVER), log_output=str(ARTIFACTS / "chromedriver.log")
    )
    try:
        driver = webdriver.Chrome(service=service, options=options)
    except WebDriverException as error:
        raise AssertionError(f"Chromium did not start: {error.msg}") from error
    driver.set_page_load_timeout(WAIT)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def viewport(driver: webdriver.Chrome, width: int, height: int = 900, ratio: float = 1) -> None:
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": ratio, "mobile": False},
    )


def wait(driver: webdriver.Chrome, condition: Callable[[webdriver.Chrome], Any], what: str) -> Any:
    try:
        return WebDriverWait(driver, WAIT, poll_frequency=0.05).until(condition)
    except TimeoutException:
        raise AssertionError(f"timed out waiting for {what}") from None


THUMBNAILS = """
const images = [...document.querySelectorAll(arguments[0])];
return images.map((img) => ({
  id: img.closest("[data-id]") ? img.closest("[data-id]").dataset.id : null,
  complete: img.complete,
  naturalWidth: img.naturalWidth,
  currentSrc: img.currentSrc,
  srcset: img.getAttribute("srcset"),
  sizes: img.getAttribute("sizes"),
  rendered: img.getBoundingClientRect().width,
  origin: location.origin,
}));
"""


def decoded_images(driver: webdriver.Chrome, selector: str) -> list[dict[str, Any]]:
    """The images of ``selector``, loaded eagerly and waited for until each one decodes."""
    driver.execute_script(
        "document.querySelectorAll(arguments[0]).forEach((img) => { img.loading = 'eager'; });",
        selector,
    )

    def all_complete(driver: webdriver.Chrome) -> list[dict[str, Any]] | None:
        images: list[dict[str, Any]] = driver.execute_script(THUMBNAILS, selector)
        return images if images and all(image["complete"] for image in images) else None

    images = wait(driver, all_complete, f"the images {selector} to load")
    broken = [image for image in images if image["naturalWidth"] <= 0]
    assert not broken, broken
    return images


def srcset_widths(srcset: str) -> dict[str, int]:
    return {url: int(width) for url, width in re.findall(r"(\S+) (\d+)w", srcset)}


def chosen_width(image: dict[str, Any]) -> tuple[int, list[int]]:
    """The ``w`` of the candidate the browser chose, and every ``w`` of the ``srcset``."""
    candidates = srcset_widths(image["srcset"])
    path = image["currentSrc"].removeprefix(image["origin"])
    assert path in candidates, (path, candidates)
    return candidates[path], sorted(candidates.values())


def the_width_needed(rendered: float, ratio: float, widths: list[int]) -> int:
    """The layout's rule: the narrowest candidate with the pixels of the rendered box at
    the device's pixel ratio (never a narrower one, never a step wider), or the widest
    (a source that small is never upscaled)."""
    needed = rendered * ratio
    return min((width for width in widths if width >= needed - 0.5), default=widths[-1])


# Viewports across the grid's breakpoints: 4 columns under main's max-width, 3 columns,
# 1 column on a phone at twice the pixels (the sizes of the template by each media query).
@pytest.mark.parametrize(("width", "ratio"), [(1280, 1), (1000, 1), (400, 2)])
def test_every_thumbnail_decodes_at_the_width_the_column_needs(
    example: Example, browser: webdriver.Chrome, width: int, ratio: float
) -> None:
    viewport(browser, width, ratio=ratio)
    browser.execute_cdp_cmd("Network.clearBrowserCache", {})
    browser.get(example.base_url + "/")
    images = decoded_images(browser, "img.thumb")
    assert len(images) == 8  # the samples: 5 images, a video, a sound, a PDF
    with example.client() as client:
        for image in images:
            chosen, widths = chosen_width(image)
            expected = the_width_needed(image["rendered"], ratio, widths)
            assert chosen == expected, (image, widths)
            # The descriptor is the derivative's own width: nothing is upscaled.
            made = client.get(image["currentSrc"])
            assert made.status_code == 200
            assert Image.open(io.BytesIO(made.content)).width == chosen, image


def detail_url(example: Example, kind: str) -> str:
    """The page of the first sample of ``kind`` in the gallery."""
    with example.client() as client:
        gallery = client.get("/").text
    pk = re.search(rf'class="card media-{kind}" data-id="(\d+)"', gallery)
    assert pk is not None, gallery
    return f"{example.base_url}/media/{pk[1]}/"


def screenshot(driver: webdriver.Chrome, name: str) -> Path:
    """The page down to its content, ``SCREENSHOT_WIDTH`` CSS pixels wide, as a test artifact
    (and, with ``FILERESPONSE_SAVE_SCREENSHOTS=1``, a small copy in ``docs/images/``)."""
    height = driver.execute_script(
        "return Math.ceil(document.querySelector('main').getBoundingClientRect().bottom + scrollY)"
    )
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot",
        {
            "format": "png",
            "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": SCREENSHOT_WIDTH, "height": height, "scale": 1},
        },
    )
    png = base64.b64decode(shot["data"])
    artifact = ARTIFACTS / f"{name}.png"
    artifact.write_bytes(png)
    image = Image.open(io.BytesIO(png))
    assert image.width == SCREENSHOT_WIDTH
    if os.environ.get("FILERESPONSE_SAVE_SCREENSHOTS") == "1":
        DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
        small = DOCS_IMAGES / f"{name}.png"
        # 256 colours, dithered (Pillow dithers only to a given palette): about 90 KB.
        rgb = image.convert("RGB")
        palette = rgb.quantize(256)
        rgb.quantize(palette=palette, dither=Image.Dither.FLOYDSTEINBERG).save(small, optimize=True)
        assert small.stat().st_size < 400_000, small
    return artifact


def test_screenshots_of_the_gallery_and_a_detail_page(
    example: Example, browser: webdriver.Chrome
) -> None:
    viewport(browser, SCREENSHOT_WIDTH, 900)
    browser.get(example.base_url + "/")
    decoded_images(browser, "img.thumb")
    gallery = screenshot(browser, "gallery")
    browser.get(detail_url(example, "video"))
    wait(
        browser,
        lambda driver: driver.execute_script(
            "return document.querySelector('video#player').readyState >= 1 && "
            "document.querySelectorAll('#served tbody tr').length === "
            "document.querySelectorAll('[data-served]').length"
        ),
        "the video's metadata and the 'how was this served' table",
    )
    detail = screenshot(browser, "detail")
    assert gallery.stat().st_size > 10_000
    assert detail.stat().st_size > 10_000


def upload_png(path: Path) -> Path:
    """A small picture with something to see in its thumbnail."""
    image = Image.new("RGB", (960, 720), (30, 90, 160))
    for band in range(0, 960, 120):
        image.paste((230, 180 - band // 8, 60 + band // 6), (band, 240, band + 60, 480))
    image.save(path, format="PNG")
    return path


def test_an_upload_through_the_form_appears_in_the_gallery(
    example: Example, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    picture = upload_png(tmp_path / "Aus dem Browser, Übersicht.png")
    viewport(browser, SCREENSHOT_WIDTH, 900)
    browser.get(example.base_url + "/upload/")
    # What the progress bar and the status line showed, kept across the redirect.
    browser.execute_script(
        """
        const progress = document.getElementById("upload-progress");
        const status = document.getElementById("upload-status");
        sessionStorage.setItem("seen", "[]");
        new MutationObserver(() => {
          const seen = JSON.parse(sessionStorage.getItem("seen"));
          seen.push({hidden: progress.hidden, value: progress.value, status: status.textContent});
          sessionStorage.setItem("seen", JSON.stringify(seen));
        }).observe(document.getElementById("upload-form"),
                   {attributes: true, childList: true, subtree: true, characterData: true});
        """
    )
    browser.find_element(By.ID, "id_upload").send_keys(str(picture))
    browser.find_element(By.ID, "upload-submit").click()
    wait(browser, lambda driver: re.search(r"/media/\d+/$", driver.current_url), "the redirect")
    pk = int(re.findall(r"/media/(\d+)/$", browser.current_url)[0])
    seen = json.loads(browser.execute_script("return sessionStorage.getItem('seen')"))
    assert any(not step["hidden"] for step in seen), seen
    assert max(step["value"] for step in seen) == 100, seen
    assert any(step["status"].endswith("% sent") for step in seen), seen
    assert seen[-1]["status"] == "Saved.", seen
    state = browser.find_element(By.ID, "state").get_attribute("data-state")
    assert state == "done"
    assert browser.find_element(By.ID, "title").text == picture.stem
    decoded_images(browser, "img#picture")

    browser.get(example.base_url + "/")
    thumbnail = decoded_images(browser, f'[data-id="{pk}"] img.thumb')
    assert len(thumbnail) == 1
    chosen, widths = chosen_width(thumbnail[0])
    assert chosen == the_width_needed(thumbnail[0]["rendered"], 1, widths)


def run_async(driver: webdriver.Chrome, script: str, *args: object) -> dict[str, Any]:
    """``script`` ends by ``done(result)``; an ``{"error": ...}`` result fails the test."""
    driver.set_script_timeout(WAIT)
    result: dict[str, Any] = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];\n" + script, *args
    )
    assert "error" not in result, result
    return result


PLAY = """
const media = document.querySelector(arguments[0]);
const started = performance.now();
media.play().then(() => {
  const first = media.currentTime;
  (function advancing() {
    if (media.currentTime > first + 0.3) {
      done({paused: media.paused, currentTime: media.currentTime, duration: media.duration});
    } else if (performance.now() - started > 15000) {
      done({error: "no progress", currentTime: media.currentTime, readyState: media.readyState,
            networkState: media.networkState, mediaError: media.error && media.error.message});
    } else {
      setTimeout(advancing, 50);
    }
  })();
}, (error) => done({error: String(error)}));
"""

SEEK_TO_THE_MIDDLE = """
const media = document.querySelector(arguments[0]);
media.addEventListener("seeked", () => {
  done({currentTime: media.currentTime, duration: media.duration, readyState: media.readyState,
        src: media.currentSrc});
}, {once: true});
media.addEventListener("error", () => done({error: media.error && media.error.message}));
media.currentTime = media.duration / 2;
"""


def test_the_video_plays_and_seeks_to_its_middle_by_ranges(
    example: Example, browser: webdriver.Chrome
) -> None:
    page = detail_url(example, "video")
    browser.get(page)
    # Played on its first view, live while the transcode is made (not seekable then:
    # a stream of no length), or from the stored transcode.
    playing = run_async(browser, PLAY, "video#player")
    assert not playing["paused"]
    src = browser.execute_script("return document.querySelector('video#player').currentSrc")
    with example.client() as client:

        def stored() -> bool:
            return client.head(src).headers.get("Accept-Ranges") == "bytes"

        wait_for(stored, WAIT, "the transcode to be stored")
    # Seen again by a visitor without it in their cache (it is immutable: cached for a year).
    browser.execute_cdp_cmd("Network.clearBrowserCache", {})
    logged = len(example.log.read_bytes())
    browser.get(page)
    playing = run_async(browser, PLAY, "video#player")
    assert playing["duration"] > 1, playing
    seeked = run_async(browser, SEEK_TO_THE_MIDDLE, "video#player")
    assert abs(seeked["currentTime"] - seeked["duration"] / 2) < 0.1, seeked
    if seeked["readyState"] < 2:
        wait(
            browser,
            lambda driver: driver.execute_script(
                "return document.querySelector('video#player').readyState >= 2"
            ),
            "the frame at the middle of the video",
        )
    # The access log's lines of the transcode since: its paths as sent, percent-encoded.
    path = unquote(urlsplit(seeked["src"]).path)
    log = example.log.read_bytes()[logged:].decode(errors="replace")
    answers = [
        status
        for sent, status in re.findall(r'"GET (\S+) HTTP/1.1" (\d+)', log)
        if unquote(urlsplit(sent).path) == path
    ]
    assert "206" in answers, (path, answers, log[-2000:])


def test_the_sound_plays(example: Example, browser: webdriver.Chrome) -> None:
    browser.get(detail_url(example, "audio"))
    decoded_images(browser, "img.waveform")
    playing = run_async(browser, PLAY, "audio#player")
    assert not playing["paused"]
    assert playing["currentTime"] > 0.3


def test_the_pages_of_a_pdf_preview(example: Example, browser: webdriver.Chrome) -> None:
    browser.get(detail_url(example, "pdf"))
    pages = decoded_images(browser, ".pdf-page img")
    assert len(pages) == 3  # the sample's pages
