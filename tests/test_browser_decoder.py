"""The latent pad in real headless Chromium: the page's decoder matches Keras, and mouse and
finger drags redraw the picture live while the server hears only the release.

One server (tests/apps/latent_pad_app.py) and one browser for the whole module.
"""

import json

import numpy as np
import pytest

from tools.browser import (CHROMIUM, CHROMIUM_ARGS, ROOT, missing_requirements,
                           streamlit_server, wait_until_idle)

pytestmark = [pytest.mark.slow, pytest.mark.browser]

APP = ROOT / "tests" / "apps" / "latent_pad_app.py"
PAD = '.vae-latent-pad[data-role="pad"]'


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    problem = missing_requirements()
    if problem:
        pytest.skip(problem)
    parity = tmp_path_factory.mktemp("pad") / "parity.npz"
    env = {"PYTHONPATH": str(ROOT), "VAE_PAD_PARITY": str(parity)}
    with streamlit_server(APP, env=env) as (url, _):
        yield url, parity


@pytest.fixture(scope="module")
def browser(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


def open_pad(browser, url, **context):
    page = browser.new_context(**context).new_page()
    page.frames_received = []  # websocket message sizes, server -> browser
    page.on("websocket", lambda ws: ws.on(
        "framereceived", lambda payload: page.frames_received.append(len(payload))))
    page.goto(url, wait_until="domcontentloaded")
    wait_until_idle(page, settle_ms=500)
    page.locator(f"{PAD} .pad").wait_for(state="visible", timeout=30_000)
    return page


def picture(page) -> list[int]:
    return page.locator(f"{PAD} canvas.digit").evaluate(
        "c => Array.from(c.getContext('2d').getImageData(0, 0, 28, 28).data.filter("
        "(_, i) => i % 4 === 0))")


def next_frames(page):
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => "
                  "requestAnimationFrame(() => r())))")


def released(page) -> str:
    return page.locator('[data-testid="stMarkdown"]', has_text="released:").inner_text()


def wait_released(page, text: str):
    from playwright.sync_api import expect

    expect(page.locator('[data-testid="stMarkdown"]', has_text="released:")).to_contain_text(
        text, timeout=30_000)


def test_the_page_decodes_like_keras_and_both_instances_share_one_module(server, browser):
    url, parity = server
    page = open_pad(browser, url)
    expected = np.load(parity)
    model_hash = str(expected["hash"])
    roles = page.locator(".vae-latent-pad").evaluate_all(
        "els => els.map(e => [e.dataset.role, e.dataset.module])")
    token = page.evaluate("() => vaeLabDecoder.moduleToken")
    assert sorted(roles) == [["model", token], ["pad", token]]
    assert model_hash in page.evaluate("() => vaeLabDecoder.models()")

    z = expected["z"]
    decoded = page.evaluate("([h, z, n]) => Array.from(vaeLabDecoder.decode(h, z, n))",
                            [model_hash, z.ravel().tolist(), len(z)])
    assert np.abs(np.reshape(decoded, (-1, 28, 28)) - expected["decoded"]).max() <= 1 / 255
    for (x, y), digit, want in zip(expected["plane"], range(10), expected["plane_decoded"]):
        got = page.evaluate("([h, x, y, d]) => Array.from(vaeLabDecoder.decodePoint(h, x, y, d))",
                            [model_hash, float(x), float(y), digit])
        assert np.abs(np.reshape(got, (28, 28)) - want).max() <= 1 / 255
    row = page.evaluate("([h]) => Array.from(vaeLabDecoder.decodeClassRow(h, 0.5, -1))",
                        [model_hash])
    singles = [page.evaluate("([h, d]) => Array.from(vaeLabDecoder.decodePoint(h, 0.5, -1, d))",
                             [model_hash, d]) for d in range(10)]
    assert np.abs(np.ravel(row) - np.ravel(singles)).max() <= 1e-6
    assert page.locator('[data-testid="stException"]').count() == 0


def test_a_mouse_drag_redraws_live_and_the_server_hears_only_the_release(server, browser):
    url, parity = server
    page = open_pad(browser, url)
    before, heard = picture(page), released(page)
    box = page.locator(f"{PAD} canvas.overlay").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.3)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.8, box["y"] + box["height"] * 0.7, steps=12)
    next_frames(page)
    during = picture(page)
    assert during != before  # decoded in the page, mid-drag
    page.wait_for_timeout(300)
    assert released(page) == heard  # no rerun while dragging
    page.frames_received.clear()
    page.mouse.up()
    wait_released(page, '"point"')
    # The rerun re-sends no weights: the unchanged model message goes by reference.
    assert max(page.frames_received) < int(np.load(parity)["payload_bytes"]) / 4
    x, y = json.loads(released(page).split("released:", 1)[1].strip())["point"]
    pad = page.evaluate("() => vaeLabDecoder.pads()")[0]
    assert (x, y) == pytest.approx((pad["x"], pad["y"]), abs=1e-3)
    assert x > 0 > y  # right of and below the centre, where the drag ended

    page.locator(f"{PAD} .buttons button", has_text="7").click()
    wait_released(page, '"digit": 7')
    assert page.locator('[data-testid="stException"]').count() == 0


def test_a_finger_drag_on_a_phone_redraws_and_the_page_does_not_scroll_sideways(server, browser):
    page = open_pad(browser, server[0], viewport={"width": 390, "height": 844}, has_touch=True,
                    is_mobile=True, device_scale_factor=2)
    overlay = page.locator(f"{PAD} canvas.overlay")
    overlay.scroll_into_view_if_needed()
    before = picture(page)
    box = overlay.bounding_box()
    cdp = page.context.new_cdp_session(page)

    def touch(kind, fx, fy):
        point = {"x": box["x"] + box["width"] * fx, "y": box["y"] + box["height"] * fy}
        cdp.send("Input.dispatchTouchEvent",
                 {"type": kind, "touchPoints": [] if kind == "touchEnd" else [point]})

    touch("touchStart", 0.2, 0.8)
    for step in range(1, 9):
        touch("touchMove", 0.2 + 0.07 * step, 0.8 - 0.07 * step)
    next_frames(page)
    assert picture(page) != before
    touch("touchEnd", 0, 0)
    wait_released(page, '"point"')
    assert page.evaluate("() => document.scrollingElement.scrollWidth <= window.innerWidth")
    assert page.locator('[data-testid="stException"]').count() == 0


def test_a_browser_without_pointer_events_gets_a_plain_note_and_the_page_still_works(server,
                                                                                   browser):
    context = browser.new_context()
    context.add_init_script("delete window.PointerEvent")
    page = context.new_page()
    page.goto(server[0], wait_until="domcontentloaded")
    wait_until_idle(page, settle_ms=500)
    note = page.locator(".vae-latent-pad .note")
    note.wait_for(state="visible", timeout=30_000)
    assert "cannot run in this browser" in note.inner_text()
    assert page.get_by_text("released:").count() == 1  # the rest of the page ran
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.get_by_text("BidiComponent Error").count() == 0
    context.close()
