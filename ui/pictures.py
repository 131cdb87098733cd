"""Digit pictures on a page: crisp upscaling (whole pixels, never blur) and tiled grids."""

from __future__ import annotations

import random

import numpy as np
import streamlit as st

from vae_core import images


def crisp_images():
    """Ask the browser to scale digit images by repeating pixels, never by blurring them."""
    st.html("<style>[data-testid='stImage'] img, [data-testid='stImageContainer'] img "
            "{image-rendering: pixelated;}</style>")


def show(image, caption: str | None = None, scale: int = 3, width="content"):
    """Show a [0, 1] greyscale picture `scale` times its size (or stretched), crisp.

    The PNG is sent at its own size and the browser scales it by repeating pixels
    (`crisp_images`): a fraction of the bytes of an upscaled copy, and no lossy re-encoding.
    """
    if width == "content":
        width = int(np.shape(image)[1]) * scale
    st.image(images.to_png(image), caption=caption, width=width)


def show_grid(grid, caption: str | None = None, scale: int = 3, cols: int | None = None,
              width="content"):
    """Show images (N, 28, 28) or (rows, cols, 28, 28) tiled into one picture."""
    show(images.tile(grid, cols=cols), caption, scale, width)


def new_seed() -> int:
    """A random style seed for a 'new style' button."""
    return random.randrange(100_000)
