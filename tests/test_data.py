import keras
import numpy as np
import pytest

import vae_core
from vae_core import data as data_module
from vae_core.data import CLASS_NAMES, DataUnavailableError, load_dataset


def test_mnist_is_float_in_unit_range_with_labels(mnist):
    assert mnist.x_train.shape == (60000, 28, 28) and mnist.x_test.shape == (10000, 28, 28)
    assert mnist.x_train.dtype == np.float32
    assert 0.0 == mnist.x_train.min() and mnist.x_train.max() == 1.0
    assert set(np.unique(mnist.y_test)) == set(range(10))
    assert mnist.class_names == tuple("0123456789")
    assert not mnist.x_train.flags.writeable  # shared between visitors: read-only


def test_fashion_class_names(fashion_mnist):
    assert fashion_mnist.class_names[9] == "Ankle boot"
    assert fashion_mnist.x_test.shape == (10000, 28, 28)


def test_unavailable_data_raises_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv(data_module.CACHE_ENV, str(tmp_path))  # no disk cache to fall back on

    def offline():
        raise OSError("network is unreachable")

    monkeypatch.setattr(keras.datasets.fashion_mnist, "load_data", offline)
    load_dataset.cache_clear()
    try:
        with pytest.raises(DataUnavailableError, match="KERAS_HOME"):
            vae_core.load_dataset("fashion_mnist")
    finally:
        load_dataset.cache_clear()


def test_head_takes_the_first_images(tiny_data):
    small = tiny_data.head(10, 3)
    assert small.x_train.shape == (10, 28, 28) and small.y_test.shape == (3,)
    np.testing.assert_array_equal(small.x_train, tiny_data.x_train[:10])
    assert len(tiny_data.head(10).x_test) == len(tiny_data.x_test)  # test set kept by default
    with pytest.raises(ValueError):
        tiny_data.head(0)


def test_unknown_dataset():
    with pytest.raises(ValueError, match="Unknown dataset"):
        load_dataset("svhn")
    assert len(CLASS_NAMES["fashion_mnist"]) == 10


@pytest.fixture
def counted_loader(monkeypatch, tmp_path, tiny_data):
    """load_dataset over a scratch disk cache, with Keras's loader replaced by a counted fake."""
    calls = []

    def fake_keras_load(name):
        calls.append(name)
        return tiny_data

    monkeypatch.setenv(data_module.CACHE_ENV, str(tmp_path))
    monkeypatch.setattr(data_module, "_load_from_keras", fake_keras_load)
    load_dataset.cache_clear()
    yield calls, tmp_path / "mnist"
    load_dataset.cache_clear()


def test_disk_cache_round_trip(counted_loader, tiny_data):
    calls, folder = counted_loader
    first = load_dataset("mnist")
    assert calls == ["mnist"] and (folder / "meta.json").exists()
    load_dataset.cache_clear()
    second = load_dataset("mnist")
    assert calls == ["mnist"]  # served from the .npy files, Keras not asked again
    for part in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(second, part), getattr(tiny_data, part))
        assert getattr(second, part).dtype == getattr(first, part).dtype
    assert not second.x_train.flags.writeable


@pytest.mark.parametrize("damage", ["truncate", "garbage_meta", "swap_arrays", "delete"])
def test_a_damaged_disk_cache_is_rebuilt(counted_loader, tiny_data, damage):
    calls, folder = counted_loader
    load_dataset("mnist")
    if damage == "truncate":
        raw = (folder / "x_train.npy").read_bytes()
        (folder / "x_train.npy").write_bytes(raw[: len(raw) // 2])
    elif damage == "garbage_meta":
        (folder / "meta.json").write_text("{not json")
    elif damage == "swap_arrays":  # same shapes and dtypes, wrong contents
        np.save(folder / "x_train.npy", np.zeros_like(tiny_data.x_train))
    else:
        (folder / "y_test.npy").unlink()
    load_dataset.cache_clear()
    again = load_dataset("mnist")
    assert calls == ["mnist", "mnist"]  # rebuilt from Keras's copy
    np.testing.assert_array_equal(again.x_train, tiny_data.x_train)
    load_dataset.cache_clear()
    load_dataset("mnist")
    assert calls == ["mnist", "mnist"]  # and the rebuilt cache is good again


def test_disk_cache_can_be_switched_off(monkeypatch, tmp_path):
    monkeypatch.setenv(data_module.CACHE_ENV, "off")
    assert data_module.cache_dir() is None
    monkeypatch.setenv(data_module.CACHE_ENV, "")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    assert data_module.cache_dir() == tmp_path / "vae_core_cache"
