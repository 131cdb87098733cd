"""Restyle on the shipped digit-conditioned model, scored by the independent MNIST judge."""

from pathlib import Path

import numpy as np

from vae_core import samplers
import pytest

import vae_core

ROOT = Path(__file__).resolve().parents[1]
CONDITIONAL = ROOT / "checkpoints" / "mnist_conditional"
N = 300  # test images restyled (x 10 digits)


@pytest.fixture(scope="module")
def shipped():
    if not vae_core.is_checkpoint(CONDITIONAL):
        pytest.skip("the shipped checkpoints/mnist_conditional is missing")
    return vae_core.load_checkpoint(CONDITIONAL)


@pytest.fixture(scope="module")
def judge():
    from vae_core.quality import load_judge

    return load_judge("mnist")


def test_restyled_digits_are_read_as_requested(shipped, judge, mnist):
    from vae_core.quality import judge_predict

    restyled = shipped.restyle(mnist.x_test[:N], range(10))  # (N, 10, 28, 28)
    read = judge_predict(judge, restyled).argmax(1).reshape(N, 10)
    agreement = (read == np.arange(10)).mean()
    assert agreement >= 0.97, agreement


def test_restyle_keeps_the_style(shipped, mnist):
    """An image restyled as its own label is closer to it than a random style of that digit."""
    x, y = mnist.x_test[:N], mnist.y_test[:N]
    own = shipped.restyle(x, range(10))[np.arange(N), y]
    random_style = shipped.decode(shipped.latent_codes(samplers.get(shipped).styles(7, N, digits=y), y))
    kept = np.mean((own - x) ** 2, axis=(1, 2))
    chance = np.mean((random_style - x) ** 2, axis=(1, 2))
    assert kept.mean() < 0.75 * chance.mean(), (kept.mean(), chance.mean())
    assert (kept < chance).mean() > 0.75
