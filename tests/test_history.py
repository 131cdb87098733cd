import io

import numpy as np
from PIL import Image

from vae_core import history, images


def _snapshots(epochs=3, n=50):
    rng = np.random.default_rng(0)
    return history.TrainingSnapshots(
        epochs=np.arange(1, epochs + 1, dtype=np.int32),
        points=rng.normal(size=(epochs, n, 2)).astype(np.float32),
        labels=rng.integers(0, 10, n).astype(np.int32),
        samples=rng.integers(0, 256, (epochs, 10, 28, 28)).astype(np.uint8),
        explained=np.tile(np.float32([1, 0]), (epochs, 1)), style_seed=3)


def test_npz_round_trip_is_plain_arrays():
    snaps = _snapshots()
    back = history.TrainingSnapshots.from_npz(snaps.to_npz())
    np.testing.assert_array_equal(back.points, snaps.points)
    assert back.style_seed == 3 and len(back) == 3 and not back.is_pca


def test_frames_show_the_map_above_the_samples_and_make_a_gif():
    snaps = _snapshots()
    frames = history.render_frames(snaps)
    assert frames.shape == (3, 280 + 28 + 12, 280, 3) and frames.dtype == np.uint8
    assert not np.array_equal(frames[0], frames[1])  # the points moved
    np.testing.assert_array_equal(frames[0][-28:, :28, 0], snaps.samples[0, 0])  # first sample
    gif = Image.open(io.BytesIO(images.to_gif(frames, duration_ms=500)))
    assert gif.n_frames == 3 and gif.size == (280, 320)
