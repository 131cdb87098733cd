"""Helpers for the app's AppTest tests: tiny checkpoints, running pages, reading images.

The tiny checkpoints are trained for one epoch on the synthetic data from conftest, so the page
tests do not depend on the shipped checkpoints being present (a separate test covers those).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import vae_core

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
TIMEOUT = 60  # seconds per script run: the first run imports TensorFlow
PAGES = tuple(f"app_pages/{name}.py"
              for name in ("home", "train", "generate", "latent", "digit"))

TINY_MODELS = {
    # the shipped MNIST conditional model's design, in miniature: class-aware encoder,
    # consistency loss, a fitted style mixture and class-matched styles around kept styles
    "mnist_conditional": dict(conditional=True, latent_dim=4, encoder_conditional=True,
                              consistency_weight=1.0, style_prior_components=3,
                              class_matched_styles=True, class_style_anchors=30),
    "mnist_2d_kl_on": dict(latent_dim=2, beta=1.0),
    "mnist_2d_kl_off": dict(latent_dim=2, beta=0.0),
}


def make_tiny_checkpoints(root: Path, data) -> Path:
    for name, settings in TINY_MODELS.items():
        config = vae_core.VAEConfig(hidden=(32,), epochs=1, batch_size=128, **settings)
        result = vae_core.train(config, data, validate=False)
        vae_core.save_checkpoint(result.model, root / name, result.history)
    return root


@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory, tiny_data):
    """Import this fixture into a test module to use it."""
    return make_tiny_checkpoints(tmp_path_factory.mktemp("checkpoints"), tiny_data)


@pytest.fixture
def checkpoints(tiny_checkpoints, monkeypatch):
    """Point the app at the tiny checkpoints."""
    monkeypatch.setenv("VAE_LAB_CHECKPOINTS", str(tiny_checkpoints))
    return tiny_checkpoints


def open_app(page: str | None = None) -> AppTest:
    """Run the app once (home page), then switch to `page` and run that."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    if page is not None:
        at.switch_page(page)
        at.run()
    return at


def assert_calm(at: AppTest):
    """No exception box and no 'unexpected' error note on the page."""
    assert not at.exception, [e.value for e in at.exception]
    unexpected = [e.value for e in at.error if "unexpected" in e.value]
    assert not unexpected, unexpected


def image_urls(at: AppTest) -> list[str]:
    """Media URLs of every st.image on the page; a URL is a hash of the image bytes."""
    return [url for element in at.get("image") for url in element.value]


def texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    parts += [s.value for s in at.subheader] + [e.value for e in at.error]
    parts += [w.value for w in at.warning] + [i.value for i in at.info]
    return "\n".join(parts)


def run_until(at: AppTest, condition, timeout: float = 90, interval: float = 0.5) -> AppTest:
    """Rerun the script (as the browser's fragment timer would) until `condition(at)` holds."""
    deadline = time.time() + timeout
    while True:
        at.run()
        if condition(at):
            return at
        if time.time() > deadline:
            raise AssertionError(f"condition not met within {timeout} s:\n{texts(at)}")
        time.sleep(interval)
