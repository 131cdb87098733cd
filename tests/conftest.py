"""Shared test set-up: offline datasets via a scratch KERAS_HOME, and small synthetic data.

KERAS_HOME must be set before Keras is first imported, so this runs at conftest import time.
"""

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATASETS = ROOT.parent / "shared" / "datasets"

if "KERAS_HOME" not in os.environ and SHARED_DATASETS.is_dir():
    _home = Path(tempfile.mkdtemp(prefix="vae-lab-keras-"))
    (_home / "datasets").symlink_to(SHARED_DATASETS.resolve())
    os.environ["KERAS_HOME"] = str(_home)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# One disk cache of the normalised arrays for every test session (not one per scratch KERAS_HOME).
os.environ.setdefault("VAE_CORE_DATA_CACHE",
                      str(Path(tempfile.gettempdir()) / "vae-lab-data-cache"))

import vae_core  # noqa: E402  (after KERAS_HOME)
from vae_core.data import Dataset  # noqa: E402


def _real_data_available(name: str) -> bool:
    home = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras"))
    files = {"mnist": ["mnist.npz"],
             "fashion_mnist": ["fashion-mnist/train-images-idx3-ubyte.gz"]}[name]
    return all((home / "datasets" / f).exists() for f in files)


@pytest.fixture(scope="session")
def mnist() -> Dataset:
    if not _real_data_available("mnist"):
        pytest.skip("real MNIST not cached (set KERAS_HOME, or ../shared/datasets is absent)")
    return vae_core.load_dataset("mnist")


@pytest.fixture(scope="session")
def fashion_mnist() -> Dataset:
    if not _real_data_available("fashion_mnist"):
        pytest.skip("real Fashion-MNIST not cached")
    return vae_core.load_dataset("fashion_mnist")


def synthetic_dataset(n_train=512, n_test=128, seed=0) -> Dataset:
    """Ten blob-shaped 'digits' (a bright square whose position encodes the class), plus noise."""
    rng = np.random.default_rng(seed)

    def make(n):
        y = rng.integers(0, 10, n)
        x = rng.uniform(0, 0.1, (n, 28, 28)).astype(np.float32)
        for i, label in enumerate(y):
            r, c = divmod(int(label), 5)
            x[i, 4 + r * 12: 12 + r * 12, 2 + c * 5: 7 + c * 5] = 0.9
        return x, y.astype(np.int64)

    return Dataset("mnist", *make(n_train), *make(n_test))


@pytest.fixture(scope="session")
def tiny_data() -> Dataset:
    return synthetic_dataset()


@pytest.fixture(autouse=True, scope="module")
def _release_what_a_test_module_kept():
    """After each test file: drop Streamlit's caches (AppTest sessions never close, so the models
    their visitors trained stay cached) and move what is still alive out of the garbage
    collector's way; otherwise every later collection rescans a million objects and the later
    test files ran several times slower than alone."""
    import gc
    import sys

    yield
    st = sys.modules.get("streamlit")
    if st is not None:
        st.cache_resource.clear()
        st.cache_data.clear()
    gc.collect()
    gc.freeze()
