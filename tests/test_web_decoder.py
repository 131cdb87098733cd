"""vae_core.web_decoder: the browser payload holds every decoder vae_core builds, and its numpy
reference forward pass decodes exactly like Keras."""

import types
import warnings

import keras
import numpy as np
import pytest

import vae_core
from vae_core import latent
from vae_core.web_decoder import (WebDecoderError, decoder_payload, parse_payload,
                                  payload_hash, plane_to_decoder_inputs, reference_decode)

CONFIGS = {
    "mlp": dict(arch="mlp", latent_dim=2, hidden=(24, 12)),
    "conv": dict(arch="conv", latent_dim=3, hidden=(16,), conv_width=4),
    "detail_conv": dict(arch="conv", conditional=True, latent_dim=3, hidden=(16,),
                        conv_width=6, decoder_detail_convs=2),
}


def tiny_model(name: str, int8: bool = False) -> vae_core.VAE:
    keras.utils.set_random_seed(0)
    model = vae_core.VAE(vae_core.VAEConfig(**CONFIGS[name]))
    if int8:
        with warnings.catch_warnings():  # "Layer X does not have a `quantize` method"
            warnings.simplefilter("ignore")
            model.decoder.quantize("int8")
    return model


def decoder_inputs(model, n=40, seed=1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 1.5, (n, model.config.decoder_input_dim)).astype(np.float32)
    if model.config.conditional:
        z[:, -10:] = np.eye(10)[rng.integers(0, 10, n)]
    return z


@pytest.mark.parametrize("int8", [False, True], ids=["float32", "int8"])
@pytest.mark.parametrize("name", list(CONFIGS))
def test_the_payload_lists_the_decoder_layers_in_order_and_decodes_like_keras(name, int8):
    model = tiny_model(name, int8)
    parsed = parse_payload(decoder_payload(model))
    kinds = [spec["type"] for spec in parsed.layers]
    hidden = ["dense"] * len(model.config.hidden)
    if model.config.arch == "conv":
        assert kinds == hidden + ["dense", "reshape", "conv2d_transpose", "conv2d_transpose"] + [
            "conv2d"] * model.config.decoder_detail_convs + ["conv2d_transpose", "activation"]
    else:
        assert kinds == hidden + ["dense", "reshape", "activation"]
    assert parsed.header["input_dim"] == model.config.decoder_input_dim
    weighted = [spec for spec in parsed.layers if "kernel" in spec]
    for spec, layer in zip(weighted, [l for l in model.decoder.layers if l.weights], strict=True):
        kernel = parsed.tensor(spec["kernel"])
        if spec["type"] == "conv2d_transpose":  # stored (kh, kw, in, out)
            assert kernel.shape == layer.kernel.shape[:2] + (layer.kernel.shape[3],
                                                           layer.kernel.shape[2])
        else:
            assert kernel.shape == tuple(layer.kernel.shape)
        quantized = spec["type"] == "dense" and int8
        assert ("input_quantizer" in spec) == quantized
        assert kernel.dtype == (np.int8 if quantized else np.float32)
    z = decoder_inputs(model)
    np.testing.assert_allclose(reference_decode(parsed, z), model.decode(z), atol=1e-5)


def test_int8_needs_the_input_rounding_that_keras_does():
    model = tiny_model("detail_conv", int8=True)
    parsed = parse_payload(decoder_payload(model))
    z = decoder_inputs(model, 100)
    for spec in parsed.layers:
        spec.pop("input_quantizer", None)  # de-quantized weights only
    assert np.abs(reference_decode(parsed, z) - model.decode(z)).max() > 1e-5


def test_the_map_section_maps_plane_points_like_decode_points():
    model = tiny_model("detail_conv", int8=True)
    means = np.random.default_rng(2).normal(size=(50, 3)).astype(np.float32)
    projection = latent.fit_projection(means)
    points, labels = projection.to_2d(means), np.arange(50) % 10
    parsed = parse_payload(decoder_payload(model, points, labels, projection))
    section = parsed.header["map"]
    np.testing.assert_array_equal(parsed.tensor(section["points"]), points)
    np.testing.assert_array_equal(parsed.tensor(section["labels"]), labels)
    plane = np.array([[0.5, -1.0], [2.0, 0.25]], np.float32)
    for digit in (0, 7):
        np.testing.assert_allclose(
            reference_decode(parsed, plane_to_decoder_inputs(parsed, plane, digit)),
            latent.decode_points(model, plane, projection, digit), atol=1e-5)


def test_the_hash_names_the_contents():
    a, b = tiny_model("mlp"), tiny_model("conv")
    assert payload_hash(decoder_payload(a)) == payload_hash(decoder_payload(a))
    assert payload_hash(decoder_payload(a)) != payload_hash(decoder_payload(b))
    points = np.zeros((3, 2), np.float32)
    assert payload_hash(decoder_payload(a, points, [0, 1, 2])) != payload_hash(
        decoder_payload(a))


def test_an_unsupported_layer_gets_a_one_sentence_error():
    z = keras.Input((2,))
    x = keras.layers.Dense(784)(z)
    x = keras.layers.BatchNormalization()(x)
    fake = types.SimpleNamespace(decoder=keras.Model(z, x),
                                 config=types.SimpleNamespace(conditional=False, latent_dim=2))
    with pytest.raises(WebDecoderError, match="BatchNormalization.*cannot run in the browser"):
        decoder_payload(fake)


def test_bad_inputs_get_clear_errors():
    with pytest.raises(WebDecoderError, match="Only a vae_core VAE"):
        decoder_payload(object())
    model = tiny_model("conv")
    with pytest.raises(WebDecoderError, match="needs a projection"):
        decoder_payload(model, np.zeros((4, 2)), np.zeros(4))
    payload = bytearray(decoder_payload(model))
    payload[-1] ^= 1
    with pytest.raises(WebDecoderError, match="hash does not match"):
        parse_payload(bytes(payload))
    with pytest.raises(WebDecoderError, match="not a browser-decoder payload"):
        parse_payload(b"PK\x03\x04 a zip file")


def test_the_pad_builds_a_payload_once_per_model():
    from ui.latent_pad import model_payload

    model = tiny_model("mlp")
    points, labels = np.zeros((5, 2), np.float32), np.arange(5)
    first = model_payload(model, points, labels, None)
    assert model_payload(model, points.copy(), labels, None)[0] is first[0]
    assert first[1] == payload_hash(first[0])
