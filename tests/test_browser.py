"""Every page in a real headless Chromium: it renders, and no exception box appears.

Slow (a real server, TensorFlow import, a browser); skipped when Chromium or Playwright is missing.
"""

import re

import pytest

from apptest_support import tiny_checkpoints  # noqa: F401 (a fixture)
from tools.browser import (PAGES, browser_page, missing_requirements, serve, visit,
                           wait_until_idle)

pytestmark = [pytest.mark.slow, pytest.mark.browser]


@pytest.fixture(scope="module")
def app_url(tiny_checkpoints):
    problem = missing_requirements()
    if problem:
        pytest.skip(problem)
    with serve({"VAE_LAB_CHECKPOINTS": str(tiny_checkpoints),
                "VAE_LAB_TRAIN_SUBSET": "2000"}) as url:
        yield url


@pytest.mark.parametrize("path", [PAGES["latent"], PAGES["generate"], PAGES["train"],
                                  PAGES["home"], PAGES["digit"], PAGES["compare"]])
def test_page_renders_without_exceptions(app_url, path):
    # A deep link first: the first visit after a server start must get the full app too.
    with browser_page() as page:
        visit(page, app_url, path)
        assert page.locator('[data-testid="stException"]').count() == 0
        assert page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]').count() == 1
        assert page.locator("h1").count() >= 1
        alerts = page.locator('[data-testid="stAlertContentError"]').all_inner_texts()
        assert not [a for a in alerts if "unexpected" in a], alerts


def test_training_updates_live_and_ends_with_results(app_url):
    """The fragment timer redraws the run without any click, and the finished run shows results."""
    with browser_page() as page:
        visit(page, app_url, PAGES["train"])
        page.get_by_role("button", name="Start training").click()
        progress = page.locator('[data-testid="stProgress"]')
        progress.wait_for(timeout=60_000)
        page.get_by_text(re.compile(r"Finished \d+ epochs")).wait_for(timeout=120_000)
        page.get_by_role("button", name="Use this model").wait_for(timeout=60_000)
        assert page.get_by_role("heading", name="Result").count() == 1
        assert page.locator('[data-testid="stException"]').count() == 0


def test_a_drag_on_the_latent_map_decodes_in_the_page_and_its_release_moves_the_sliders(
        app_url):
    with browser_page() as page:
        visit(page, app_url, PAGES["latent"])
        overlay = page.locator(".vae-latent-pad canvas.overlay").first
        overlay.wait_for(state="visible", timeout=60_000)
        picture = page.locator(".vae-latent-pad canvas.digit").first
        pixels = "c => Array.from(c.getContext('2d').getImageData(0, 0, 28, 28).data).join()"
        sliders = page.locator('[data-testid="stSlider"]')
        before, first = sliders.all_inner_texts(), picture.evaluate(pixels)
        area = overlay.bounding_box()
        x, y = area["x"] + area["width"] * 0.3, area["y"] + area["height"] * 0.3
        page.mouse.move(x, y)
        page.mouse.down()
        page.mouse.move(x + area["width"] * 0.4, y + area["height"] * 0.4, steps=10)
        assert picture.evaluate(pixels) != first  # decoded in the page, before any release
        page.mouse.up()
        page.wait_for_timeout(1000)
        wait_until_idle(page)
        assert sliders.all_inner_texts()[-2:] != before[-2:]  # the server heard the release
        assert page.locator('[data-testid="stException"]').count() == 0


def test_uploading_a_checkpoint_zip_adds_it_and_a_bad_file_gets_a_message(app_url,
                                                                           tiny_checkpoints,
                                                                           tmp_path):
    import vae_core

    good = tmp_path / "my_model.zip"
    good.write_bytes(vae_core.checkpoint_zip(tiny_checkpoints / "mnist_2d_kl_on"))
    bad = tmp_path / "holiday.zip"
    bad.write_bytes(b"these are not the bytes of a zip")
    with browser_page() as page:
        visit(page, app_url, PAGES["generate"])
        sidebar = page.locator('[data-testid="stSidebar"]')
        sidebar.get_by_text("Load a checkpoint").click()
        sidebar.locator('input[type="file"]').set_input_files(str(bad))
        sidebar.get_by_text("Could not load holiday.zip").wait_for(timeout=60_000)
        sidebar.locator('input[type="file"]').set_input_files(str(good))
        page.get_by_text("samples from the prior").wait_for(timeout=60_000)  # it is active
        wait_until_idle(page)
        picker = sidebar.locator('[data-testid="stSelectbox"]').inner_html()
        assert "my_model" in picker and "(uploaded)" in picker
        assert sidebar.get_by_text("Could not load").count() == 0
        assert page.locator('[data-testid="stException"]').count() == 0


def _image_sources(page) -> list[str]:
    return page.locator('[data-testid="stImage"] img').evaluate_all(
        "images => images.map(i => i.src)")


def _stroke(page, box, points):
    """Draw one stroke through `points` (fractions of the canvas) with the mouse."""
    x0, y0, w, h = box["x"], box["y"], box["width"], box["height"]
    page.mouse.move(x0 + points[0][0] * w, y0 + points[0][1] * h)
    page.mouse.down()
    for fx, fy in points[1:]:
        page.mouse.move(x0 + fx * w, y0 + fy * h, steps=8)
    page.mouse.up()


def test_drawing_a_digit_on_the_canvas_shows_what_the_model_makes_of_it(app_url):
    import time

    with browser_page() as page:
        visit(page, app_url, PAGES["digit"])
        page.get_by_text("Draw a digit on the canvas or upload a photo").wait_for()
        assert _image_sources(page) == []
        canvas = page.locator(".vae-canvas canvas").first  # the drawing canvas, not the map
        canvas.wait_for(state="visible")
        box = canvas.bounding_box()
        assert box["width"] >= 200 and box["height"] >= 200
        _stroke(page, box, [(0.3, 0.2), (0.7, 0.2), (0.45, 0.85)])  # a 7
        page.get_by_text("Your style, every digit").wait_for(timeout=60_000)
        wait_until_idle(page)
        first = _image_sources(page)
        assert len(first) >= 4  # input, reconstruction, restyle row, morph strip and frame
        assert page.locator('[data-testid="stException"]').count() == 0

        started = time.time()
        _stroke(page, box, [(0.35, 0.55), (0.65, 0.55)])  # a cross-bar: the digit changes
        page.wait_for_function(
            "old => { const now = [...document.querySelectorAll('[data-testid=stImage] img')]"
            ".map(i => i.src); return now.length && now[0] !== old; }", arg=first[0],
            timeout=30_000)
        print(f"stroke to new pictures: {time.time() - started:.2f} s")
        wait_until_idle(page, settle_ms=500)
        assert _image_sources(page)[:2] != first[:2]  # the input and its reconstruction

        with page.expect_download(timeout=60_000) as download:
            page.get_by_role("button", name="Download the morph as a GIF").click()
        gif = open(download.value.path(), "rb").read()
        assert gif[:6] == b"GIF89a" and len(gif) > 1000

        page.get_by_role("button", name="Clear").click()
        page.get_by_text("Draw a digit on the canvas or upload a photo").wait_for(timeout=30_000)
        assert page.locator('[data-testid="stException"]').count() == 0


def test_uploading_a_text_file_renamed_png_shows_an_error_box(app_url, tmp_path):
    fake = tmp_path / "digit.png"
    fake.write_text("this is a shopping list, not a picture\n" * 10)
    with browser_page() as page:
        visit(page, app_url, PAGES["digit"])
        main = page.locator('[data-testid="stMain"]')
        main.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(str(fake))
        error = page.locator('[data-testid="stAlertContentError"]')
        error.wait_for(timeout=60_000)
        assert "not a picture" in error.inner_text()
        wait_until_idle(page, settle_ms=500)
        assert page.locator('[data-testid="stException"]').count() == 0
        assert _image_sources(page) == []
