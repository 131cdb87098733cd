"""Pictures in and out: tiled grids, crisp upscaling, PNG and GIF bytes; and reading a visitor's
own digit (an upload or a canvas drawing) the way MNIST was made.
"""

from __future__ import annotations

import io
import struct
import warnings

import numpy as np

MAX_PIXELS = 20_000_000  # larger pictures are refused before they are decoded
MIN_SIDE = 8  # smaller pictures hold no readable digit
# Only plain raster formats: never EPS/PDF (Pillow would run Ghostscript) or other exotica.
READABLE_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF")
FIELD, BOX = 28, 20  # MNIST: the digit's longer side fits 20 px, centred in a 28 x 28 field


class ImageError(ValueError):
    """A picture that cannot be read as a digit; the message is a plain sentence for a visitor."""


def tile(images, cols: int | None = None, pad: int = 2, pad_value: float = 0.5) -> np.ndarray:
    """Images (N, h, w) or (rows, cols, h, w) -> one (H, W) float image with padding between."""
    images = np.asarray(images, np.float32)
    if images.ndim == 4:
        rows, cols = images.shape[:2]
        images = images.reshape(-1, *images.shape[2:])
    else:
        cols = cols or len(images)
        rows = -(-len(images) // cols)
    h, w = images.shape[1:]
    out = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad), pad_value, np.float32)
    for i, img in enumerate(images):
        r, c = divmod(i, cols)
        out[pad + r * (h + pad): pad + r * (h + pad) + h, pad + c * (w + pad): pad + c * (w + pad) + w] = img
    return out


def to_uint8(image, scale: int = 1, invert: bool = False) -> np.ndarray:
    """[0, 1] floats -> uint8 pixels, upscaled by pixel repetition (crisp, no blur)."""
    image = np.nan_to_num(np.asarray(image, np.float32), nan=0.0)
    if invert:
        image = 1.0 - image
    pixels = np.clip(np.rint(image * 255), 0, 255).astype(np.uint8)
    if scale > 1:
        pixels = np.repeat(np.repeat(pixels, scale, axis=0), scale, axis=1)
    return pixels


def to_png(image, scale: int = 1) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(to_uint8(image, scale)).save(buffer, format="PNG")
    return buffer.getvalue()


def to_gif(frames, scale: int = 4, duration_ms: int = 120, loop: bool = True) -> bytes:
    """Frames (N, h, w) in [0, 1], or RGB uint8 (N, h, w, 3) -> an animated GIF; grey frames
    are upscaled crisply (pixel repetition)."""
    from PIL import Image

    frames = np.asarray(frames)
    if frames.ndim == 4:
        pictures = [Image.fromarray(np.ascontiguousarray(frame, np.uint8)) for frame in frames]
    else:
        pictures = [Image.fromarray(to_uint8(frame, scale)) for frame in frames]
    if not pictures:
        raise ValueError("A GIF needs at least one frame.")
    buffer = io.BytesIO()
    pictures[0].save(buffer, format="GIF", save_all=True, append_images=pictures[1:],
                     duration=duration_ms, loop=0 if loop else 1, disposal=1)
    return buffer.getvalue()


# ---- A visitor's own digit -----------------------------------------------------------------

def open_image(data: bytes):
    """Decode untrusted picture bytes into a PIL image in mode L, LA, RGB or RGBA.

    Raises ImageError with a plain sentence (never a server path) for an empty file, something
    that is not a picture (text, SVG), a damaged file or one too large; the size is checked from
    the header, before any pixels are decoded (so decompression bombs never expand). Animated
    pictures give their first frame; CMYK, palette, 16-bit and other modes are converted; a
    phone photo's EXIF rotation is applied.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    if not data:
        raise ImageError("The file is empty: there is no picture in it.")
    head = bytes(data[:512]).lstrip().lower()
    if head.startswith((b"<svg", b"<?xml")) or b"<svg" in head:
        raise ImageError("SVG drawings cannot be read here: upload a PNG, JPEG or WebP picture.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=READABLE_FORMATS)
            _check_size(*image.size)
            if getattr(image, "n_frames", 1) > 1:
                image.seek(0)
            image.load()
            image = ImageOps.exif_transpose(image)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(_too_large_message()) from None
    except UnidentifiedImageError:
        raise ImageError("That file is not a picture Pillow can read: upload a PNG, JPEG or "
                         "WebP image.") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error):
        raise ImageError("That picture is damaged or incomplete and cannot be read.") from None
    return normalise_mode(image)


def _too_large_message() -> str:
    return (f"That picture is too large to read (more than {MAX_PIXELS // 1_000_000} "
            "megapixels): use a smaller photo or crop it around the digit.")


def _check_size(width: int, height: int):
    if width * height > MAX_PIXELS:
        raise ImageError(_too_large_message())
    if min(width, height) < MIN_SIDE:
        raise ImageError(f"That picture is only {width} x {height} pixels: too small to hold a "
                         f"digit (at least {MIN_SIDE} x {MIN_SIDE} is needed).")


def normalise_mode(image):
    """Any PIL image -> mode L, LA, RGB or RGBA (8 bits per channel)."""
    mode = image.mode
    if mode in ("L", "LA", "RGB", "RGBA"):
        return image
    if mode == "P" or mode == "PA":
        has_alpha = mode == "PA" or "transparency" in image.info
        return image.convert("RGBA" if has_alpha else "RGB")
    if mode in ("1",):
        return image.convert("L")
    if mode.startswith("I") or mode == "F":  # 16/32-bit integer or float greyscale
        from PIL import Image

        pixels = np.asarray(image, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or pixels.max() > 255 else 255.0
        if mode == "F" and pixels.max() <= 1.0:
            top = 1.0
        return Image.fromarray(np.clip(np.rint(pixels / top * 255), 0, 255).astype(np.uint8))
    if mode in ("RGBa", "La"):
        return image.convert("RGBA" if mode == "RGBa" else "LA")
    return image.convert("RGBA" if "A" in mode else "RGB")  # CMYK, YCbCr, LAB, HSV, ...


def _ink(image) -> np.ndarray:
    """A PIL image or array -> float (H, W) ink in [0, 1]: alpha when transparent, else grey
    levels inverted when the background is light."""
    from PIL import Image

    if isinstance(image, Image.Image):
        _check_size(*image.size)
        image = normalise_mode(image)
        pixels = np.asarray(image, dtype=np.float32) / 255.0
    else:
        pixels = np.asarray(image)
        if pixels.dtype == bool:
            pixels = pixels.astype(np.float32)
        elif np.issubdtype(pixels.dtype, np.integer):
            pixels = pixels.astype(np.float32) / (65535.0 if pixels.max(initial=0) > 255 else 255.0)
        elif np.issubdtype(pixels.dtype, np.floating):
            pixels = np.nan_to_num(pixels.astype(np.float32))
            if pixels.max(initial=0) > 1.0:
                pixels = pixels / 255.0
        else:
            raise ImageError("That is not a picture: expected an array of pixel values.")
        if pixels.ndim == 3 and pixels.shape[2] == 1:
            pixels = pixels[..., 0]
        if pixels.ndim not in (2, 3) or (pixels.ndim == 3 and pixels.shape[2] not in (2, 3, 4)):
            raise ImageError(f"A picture array must be (H, W), (H, W, 3) or (H, W, 4), not "
                             f"{pixels.shape}.")
        _check_size(pixels.shape[1], pixels.shape[0])
        pixels = np.clip(pixels, 0.0, 1.0)
    if pixels.ndim == 2:
        grey, alpha = pixels, None
    else:
        channels = pixels.shape[2]
        colour = pixels[..., :3] if channels >= 3 else pixels[..., :1]
        alpha = pixels[..., -1] if channels in (2, 4) else None
        grey = (colour @ np.array([0.299, 0.587, 0.114], np.float32) if colour.shape[2] == 3
                else colour[..., 0])
    if alpha is not None and alpha.min() < 0.98:  # transparency: the strokes are the opaque part
        return alpha
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    return 1.0 - grey if np.median(border) > 0.5 else grey


def prepare_digit(image) -> np.ndarray:
    """A picture of a digit -> float32 (28, 28) in [0, 1], white on black, made like MNIST.

    Ink is the alpha channel when the picture has transparency (a canvas export), else the grey
    levels, inverted when the background is light (dark ink on paper). The background level is
    subtracted, the ink cropped to its bounding box, its longer side scaled to 20 px keeping the
    aspect ratio (antialiased), and pasted into 28 x 28 with its centre of mass at the centre.
    Accepts a PIL image or an array (H, W[, 1|3|4]), uint8 or float. Raises ImageError (a
    ValueError) with a plain sentence for blank, tiny or huge pictures.
    """
    from PIL import Image

    ink = _ink(image).astype(np.float32)
    border = np.concatenate([ink[0], ink[-1], ink[:, 0], ink[:, -1]])
    background = float(np.median(border))
    peak = float(np.quantile(ink, 0.999)) if ink.size > 2000 else float(ink.max())
    contrast = peak - background
    if contrast < 0.15:
        raise ImageError("The picture looks blank: draw a digit, or upload a photo of a dark "
                         "digit on light paper.")
    ink = np.clip((ink - background) / contrast, 0.0, 1.0)
    strong = ink > 0.5
    if strong.sum() < max(3, 0.0005 * ink.size):
        raise ImageError("There is hardly any ink in the picture: draw a bigger digit, or "
                         "upload a closer photo.")
    rows, cols = np.nonzero(ink > 0.1)
    top, bottom, left, right = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    crop = ink[top:bottom, left:right]
    h, w = crop.shape
    scale = BOX / max(h, w)
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    small = Image.fromarray(np.ascontiguousarray(crop, np.float32)).resize((new_w, new_h), Image.LANCZOS)
    small = np.clip(np.asarray(small, np.float32), 0.0, 1.0)
    total = small.sum()
    ys, xs = np.indices(small.shape)
    com_y, com_x = (ys * small).sum() / total, (xs * small).sum() / total
    # Shift so the centre of mass lands on the field's centre, kept inside the field.
    oy = int(np.clip(np.rint(FIELD / 2 - com_y), 0, FIELD - new_h))
    ox = int(np.clip(np.rint(FIELD / 2 - com_x), 0, FIELD - new_w))
    out = np.zeros((FIELD, FIELD), np.float32)
    out[oy:oy + new_h, ox:ox + new_w] = small
    return out
