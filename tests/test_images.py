import io

import numpy as np
from PIL import Image

from vae_core import images


def test_tile_lays_out_rows_and_columns_with_padding():
    grid = np.zeros((2, 3, 28, 28), np.float32)
    grid[1, 2] = 1.0
    out = images.tile(grid, pad=2)
    assert out.shape == (2 * 30 + 2, 3 * 30 + 2)
    assert out[32:60, 62:90].min() == 1.0  # cell (1, 2)
    assert out[0, 0] == 0.5  # padding
    assert images.tile(np.zeros((5, 28, 28)), cols=2).shape == (3 * 30 + 2, 2 * 30 + 2)


def test_upscaling_is_nearest_neighbour_and_png_round_trips():
    img = np.array([[0.0, 1.0], [0.5, np.nan]], np.float32)
    px = images.to_uint8(img, scale=3)
    assert px.shape == (6, 6) and px.dtype == np.uint8
    assert set(np.unique(px)) == {0, 128, 255}  # no blended values: crisp edges
    decoded = np.array(Image.open(io.BytesIO(images.to_png(img, scale=3))))
    np.testing.assert_array_equal(decoded, px)


# ---- open_image / prepare_digit: a visitor's own digit ---------------------------------------

import pytest  # noqa: E402

from vae_core.images import ImageError, open_image, prepare_digit  # noqa: E402


def _bytes(image, fmt="PNG", **kw) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kw)
    return buffer.getvalue()


def _stroke_digit(size=200) -> np.ndarray:
    """A thick dark '7'-ish stroke on a light sheet, as uint8 grey (light background)."""
    grey = np.full((size, size), 235, np.uint8)
    grey[size // 5: size // 5 + size // 12, size // 4: 3 * size // 4] = 20
    for r in range(size // 5, 4 * size // 5):
        c = int(3 * size // 4 - (r - size // 5) * 0.5)
        grey[r, c - size // 24: c + size // 24] = 20
    return grey


def _paper_photo(digit: np.ndarray, rng) -> bytes:
    """An MNIST digit disguised as a photo of paper: dark ink, enlarged, offset on a larger
    light RGB sheet with a tint and a little noise, saved as JPEG."""
    k = int(rng.integers(4, 12))
    big = np.asarray(Image.fromarray(np.uint8(digit * 255)).resize((28 * k, 28 * k),
                                                                   Image.BICUBIC)) / 255.0
    h, w = 28 * k + int(rng.integers(40, 300)), 28 * k + int(rng.integers(40, 300))
    ink = np.zeros((h, w))
    oy, ox = int(rng.integers(0, h - 28 * k)), int(rng.integers(0, w - 28 * k))
    ink[oy:oy + 28 * k, ox:ox + 28 * k] = big
    rgb = rng.uniform(0.78, 0.98, 3) * (1 - 0.85 * ink[..., None]) + rng.normal(0, 0.01, (h, w, 1))
    return _bytes(Image.fromarray(np.uint8(np.clip(rgb, 0, 1) * 255)), "JPEG", quality=90)


def _canvas_export(digit: np.ndarray) -> bytes:
    """An MNIST digit as a drawing canvas exports it: transparent background, ink in alpha."""
    alpha = np.asarray(Image.fromarray(np.uint8(digit * 255)).resize((280, 280), Image.BICUBIC))
    rgba = np.zeros((300, 300, 4), np.uint8)
    rgba[10:290, 10:290, 3] = alpha
    return _bytes(Image.fromarray(rgba, "RGBA"))


@pytest.fixture(scope="module")
def judge():
    from vae_core.quality import load_judge

    return load_judge("mnist")


@pytest.mark.parametrize("disguise", ["paper", "canvas"])
def test_disguised_mnist_digits_are_still_read_right(mnist, judge, disguise):
    from vae_core.quality import judge_predict

    rng = np.random.default_rng(0)
    x, y = mnist.x_test[:300], mnist.y_test[:300]
    make = (lambda d: _paper_photo(d, rng)) if disguise == "paper" else _canvas_export
    prepared = np.stack([prepare_digit(open_image(make(d))) for d in x])
    assert prepared.shape == (300, 28, 28) and prepared.dtype == np.float32
    assert prepared.min() >= 0 and prepared.max() <= 1
    accuracy = (judge_predict(judge, prepared).argmax(1) == y).mean()
    assert accuracy >= 0.97, accuracy


def test_mnist_digits_pass_through_nearly_unchanged(mnist):
    x = mnist.x_test[:50]
    prepared = np.stack([prepare_digit(d) for d in x])
    assert np.mean((prepared - x) ** 2) < 1e-3  # already 20 px and centred by mass


def test_result_is_centred_by_mass_and_20px_on_its_longer_side():
    out = prepare_digit(Image.fromarray(_stroke_digit()))
    rows, cols = np.nonzero(out > 0.1)
    assert max(np.ptp(rows), np.ptp(cols)) + 1 in (19, 20, 21)
    ys, xs = np.indices(out.shape)
    assert abs((ys * out).sum() / out.sum() - 14) <= 1 and abs((xs * out).sum() / out.sum() - 14) <= 1
    assert out[0].max() == 0 and out[:, 0].max() == 0  # a black border, white digit


def test_arrays_of_any_kind_are_accepted():
    grey = _stroke_digit()
    reference = prepare_digit(grey)
    np.testing.assert_allclose(prepare_digit(grey / 255.0), reference, atol=1e-5)
    np.testing.assert_allclose(prepare_digit(grey[..., None]), reference, atol=1e-5)
    np.testing.assert_allclose(prepare_digit(np.stack([grey] * 3, -1)), reference, atol=0.02)
    np.testing.assert_allclose(prepare_digit(255 - grey), reference, atol=1e-5)  # dark sheet


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P", "P-transparent", "I;16", "CMYK", "1"])
def test_every_picture_mode_reads_the_same_digit(mode):
    grey = _stroke_digit()
    reference = prepare_digit(grey)
    image = Image.fromarray(grey)
    if mode == "RGBA":  # a canvas export: ink only in alpha, colour meaningless
        rgba = np.zeros((*grey.shape, 4), np.uint8)
        rgba[..., :3] = 255  # white strokes on a transparent sheet: alpha decides
        rgba[..., 3] = 255 - grey
        image = Image.fromarray(rgba, "RGBA")
    elif mode == "LA":
        image = Image.merge("LA", [image, Image.fromarray(255 - grey)])
    elif mode == "P":
        image = image.convert("P")
    elif mode == "P-transparent":
        image = Image.fromarray(np.where(grey < 128, 0, 1).astype(np.uint8), "P")
        image.putpalette([0, 0, 0, 255, 255, 255])
        image.info["transparency"] = 1
    elif mode == "I;16":
        image = Image.fromarray(grey.astype(np.uint16) * 257)
    elif mode == "CMYK":
        image = image.convert("RGB").convert("CMYK")
    elif mode == "1":
        image = image.convert("1", dither=Image.Dither.NONE)
    fmt = "JPEG" if mode == "CMYK" else ("TIFF" if mode == "I;16" else "PNG")
    opened = open_image(_bytes(image, fmt))
    assert opened.mode in ("L", "LA", "RGB", "RGBA")
    out = prepare_digit(opened)
    assert np.mean(np.abs(out - reference)) < 0.05, mode


def test_an_animated_gif_gives_its_first_frame():
    grey = _stroke_digit()
    frames = [Image.fromarray(grey), Image.fromarray(np.full_like(grey, 235))]
    data = _bytes(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
    out = prepare_digit(open_image(data))
    np.testing.assert_allclose(out, prepare_digit(grey), atol=0.05)


@pytest.mark.parametrize("data, words", [
    (b"", "empty"),
    (b"hello, this is a shopping list\n" * 20, "not a picture"),
    (np.random.default_rng(0).bytes(5000), "not a picture"),
    (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><circle r="4"/></svg>', "SVG"),
    (b'<svg width="100" height="100"><path d="M0 0L9 9"/></svg>', "SVG"),
])
def test_files_that_are_not_pictures_get_a_plain_sentence(data, words):
    with pytest.raises(ImageError, match=words) as caught:
        open_image(data)
    assert "/" not in str(caught.value)  # no paths, no internals


def test_a_truncated_picture_is_refused():
    data = _bytes(Image.fromarray(_stroke_digit(400)).convert("RGB"), "PNG")
    with pytest.raises(ImageError, match="damaged or incomplete"):
        open_image(data[: len(data) // 2])
    jpeg = _bytes(Image.fromarray(_stroke_digit(400)), "JPEG")
    with pytest.raises(ImageError, match="damaged or incomplete"):
        open_image(jpeg[: len(jpeg) // 3])


def test_huge_pictures_and_decompression_bombs_are_refused_before_decoding():
    # A 30000 x 30000 PNG of zeros compresses to about 1 MB; it would need 900 MB decoded.
    import zlib
    import struct

    width = height = 30_000

    def chunk(kind, body):
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))

    rows = zlib.compress(b"\x00" * (width + 1) * 200)  # only 200 rows present: never read
    bomb = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", rows) + chunk(b"IEND", b""))
    with pytest.raises(ImageError, match="too large"):
        open_image(bomb)
    big = np.zeros((5000, 5000), np.uint8)  # 25 megapixels as an array
    with pytest.raises(ImageError, match="too large"):
        prepare_digit(big)


@pytest.mark.parametrize("picture", [
    np.full((200, 200), 240, np.uint8),  # blank paper
    np.zeros((200, 200, 4), np.uint8),  # an empty canvas
    np.full((100, 100), 0.5, np.float32),  # flat grey
])
def test_blank_pictures_raise_a_plain_value_error(picture):
    with pytest.raises(ValueError, match="blank|hardly any ink"):
        prepare_digit(picture)


def test_a_single_speck_is_near_blank():
    speck = np.full((300, 300), 240, np.uint8)
    speck[150, 150] = 0
    with pytest.raises(ValueError, match="blank|hardly any ink"):
        prepare_digit(speck)


def test_tiny_pictures_are_refused():
    with pytest.raises(ImageError, match="too small"):
        open_image(_bytes(Image.new("RGB", (1, 1), "black")))
    with pytest.raises(ValueError, match="too small"):
        prepare_digit(np.zeros((1, 1)))


def test_to_gif_makes_a_looping_animation():
    frames = np.linspace(0, 1, 5, dtype=np.float32)[:, None, None] * np.ones((5, 28, 28))
    gif = Image.open(io.BytesIO(images.to_gif(frames, scale=2)))
    assert gif.format == "GIF" and gif.n_frames == 5 and gif.size == (56, 56)
    assert gif.info.get("loop") == 0


def test_only_plain_raster_formats_are_opened():
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 100 100\nnewpath 0 0 moveto showpage\n"
    with pytest.raises(ImageError, match="not a picture"):
        open_image(eps)  # Pillow would hand EPS to Ghostscript: never for an upload
    ico = _bytes(Image.fromarray(_stroke_digit(64)).convert("RGB"), "ICO")
    with pytest.raises(ImageError, match="not a picture"):
        open_image(ico)
