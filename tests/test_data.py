import keras
import numpy as np
import pytest

import vae_core
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


def test_unavailable_data_raises_a_clear_error(monkeypatch):
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
