"""Turning model outputs into pictures: tiled grids, crisp upscaling, PNG bytes."""

from __future__ import annotations

import io

import numpy as np


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
