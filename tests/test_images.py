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
