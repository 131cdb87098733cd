"""AppTest tests of the Your digit page: a fixed uploaded picture goes through the whole page.

The canvas is a components-v2 widget that AppTest cannot draw on; the real-browser test
(tests/test_browser.py) draws on it with the mouse.
"""

import io
import json

import numpy as np
import pytest
from PIL import Image

import vae_core
from bad_files import image_files
from ui import catalog
from apptest_support import (assert_calm, checkpoints, image_urls, open_app,  # noqa: F401
                             texts, tiny_checkpoints)

PAGE = "app_pages/digit.py"


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def photo_of_a_seven() -> bytes:
    """A dark '7' on light paper, 240 x 200 RGB: what a phone photo of a written digit is."""
    sheet = np.full((240, 200, 3), 225, np.uint8)
    sheet[50:68, 50:150] = 30
    for row in range(50, 200):
        col = int(150 - (row - 50) * 0.45)
        sheet[row, col - 9: col + 9] = 30
    return _png(sheet)


def captions(at) -> str:
    return "\n".join(img.caption for element in at.get("image") for img in element.proto.imgs)


def upload(at, name: str, data: bytes, mime="image/png"):
    at.file_uploader(key="digit_upload").set_value((name, data, mime))
    return at.run()


def test_the_page_asks_for_a_digit_first(checkpoints):
    at = open_app(PAGE)
    assert_calm(at)
    assert "Draw a digit on the canvas or upload a photo" in texts(at)
    assert not image_urls(at)


def test_an_uploaded_photo_goes_through_the_whole_page(checkpoints, mnist):
    at = upload(open_app(PAGE), "seven.png", photo_of_a_seven())
    assert_calm(at)
    assert not at.error and not at.warning
    words = texts(at)
    assert "The model reads your upload (seven.png) as:" in words
    urls = image_urls(at)
    # input, reconstruction, restyle row, morph strip, one morph frame
    assert len(urls) == 5, urls
    assert len(at.get("plotly_chart")) == 1  # the probability bars
    pads = [json.loads(p.proto.json) for p in at.get("bidi_component") if p.proto.json]
    pads = [p for p in pads if "star" in p]  # (the drawing canvas is a component too)
    assert len(pads) == 1 and pads[0]["star"] == pads[0]["point"]  # the map starts at the star
    model = vae_core.load_checkpoint(checkpoints / "mnist_conditional")
    assert len(pads[0]["shift"]) == model.config.latent_dim  # the plane through the digit
    gif = [b for b in at.get("download_button") if "GIF" in b.proto.label]
    assert gif

    # The morph answers its controls: another target, more steps, another step.
    before = image_urls(at)
    at.selectbox(key="morph_digit").set_value(3).run()
    assert image_urls(at) != before
    at.slider(key="morph_steps").set_value(6).run()
    at.slider(key="morph_step_6").set_value(6).run()
    assert "Step 6 of 6" in captions(at)
    at.segmented_control(key="morph_kind").set_value("a test image").run()
    at.number_input(key="morph_index").set_value(7).run()
    assert_calm(at)


def test_a_different_upload_changes_the_pictures(checkpoints, mnist):
    at = upload(open_app(PAGE), "seven.png", photo_of_a_seven())
    first = image_urls(at)
    digit = np.uint8(mnist.x_test[3] * 255)  # a real MNIST digit, white on black
    at = upload(at, "mnist.png", _png(digit))
    assert_calm(at)
    assert image_urls(at)[:2] != first[:2]


def _png_bomb(side: int = 30_000) -> bytes:
    """A PNG whose header claims side x side pixels (900 MP); only a few rows are present."""
    import struct
    import zlib

    def chunk(kind, body):
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\x00" * (side + 1) * 50)) + chunk(b"IEND", b""))


@pytest.mark.parametrize("name, data, words", [
    ("holiday.png", b"Dear diary, today I renamed a text file to .png", "not a picture"),
    ("blank.png", _png(np.full((200, 200, 3), 240, np.uint8)), "looks blank"),
    ("dot.png", _png(np.zeros((1, 1, 3), np.uint8)), "too small"),
    ("huge.png", _png_bomb(), "too large"),
], ids=["text-renamed-png", "blank-paper", "1x1", "huge"])
def test_bad_uploads_get_a_plain_message_and_no_exception(checkpoints, name, data, words):
    at = upload(open_app(PAGE), name, data)
    assert_calm(at)
    errors = [e.value for e in at.error]
    assert any(words in e for e in errors), errors
    assert not image_urls(at)


def test_an_unconditional_model_says_restyle_needs_a_conditional_one(checkpoints, mnist):
    at = open_app()
    at.selectbox(key=catalog.ACTIVE).set_value("mnist_2d_kl_on").run()
    at.switch_page(PAGE).run()
    at = upload(at, "seven.png", photo_of_a_seven())
    assert_calm(at)
    assert "Restyle needs a conditional model" in texts(at)
    assert "unconditional" in texts(at)
    assert len(image_urls(at)) == 4  # input, reconstruction, morph strip and frame
    at.selectbox(key="morph_digit").set_value(2).run()  # a test image of a 2 is the target
    assert_calm(at)


@pytest.mark.parametrize("name", sorted(image_files()))
def test_every_awkward_image_of_the_corpus_is_calm_on_the_page(checkpoints, name):
    """tests/bad_files.py's images (1x1, 12000x12000, CMYK, animated GIF, SVG, truncated, text,
    empty, noise): each gives the page's pictures or a plain message, never an exception."""
    bad = image_files()[name]
    at = upload(open_app(PAGE), bad.filename, bad.data)
    assert_calm(at)
    messages = [e.value for e in at.error] + [w.value for w in at.warning]
    assert messages or image_urls(at), name
    assert not any("Traceback" in m or "/" in m.split("://")[-1] and ".py" in m
                   for m in messages), messages

