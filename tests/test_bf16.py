"""The bf16 option: a working model either way, float32 weights and outputs, checkpoints keep it."""

import keras
import numpy as np
import pytest

import vae_core
from vae_core.cli import build_parser
from vae_core.config import VAEConfig
from vae_core.hardware import cpu_description, has_bf16_units
from vae_core.training import train


@pytest.fixture(scope="module", params=[False, True], ids=["float32", "bf16"])
def trained(request, tiny_data):
    config = VAEConfig(latent_dim=2, hidden=(32,), batch_size=64, epochs=3, learning_rate=3e-3,
                       bf16=request.param)
    return train(config, tiny_data, validate=False)


@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_layer_policies(arch):
    model = vae_core.VAE(VAEConfig(arch=arch, hidden=(16,), latent_dim=2, bf16=True))
    hidden = [l for l in model.encoder.layers + model.decoder.layers
              if l.name not in ("z_mean", "z_log_var", "pixel_probs") and l.weights]
    assert hidden and all(l.compute_dtype == "bfloat16" for l in hidden)
    for name in ("z_mean", "z_log_var"):
        assert model.encoder.get_layer(name).compute_dtype == "float32"
    assert model.decoder.get_layer("pixel_probs").compute_dtype == "float32"
    assert all(w.dtype == "float32" for w in model.weights)
    plain = vae_core.VAE(VAEConfig(arch=arch, hidden=(16,), latent_dim=2))
    assert all(l.compute_dtype == "float32" for l in plain.encoder.layers + plain.decoder.layers)


@pytest.mark.parametrize("bf16", [False, True])
def test_the_image_critic_follows_the_option_but_keeps_a_float32_logit(bf16):
    config = VAEConfig(arch="conv", conditional=True, realism_weight=1.0, critic_width=4,
                       hidden=(16,), latent_dim=2, bf16=bf16)
    critic = vae_core.VAE(config).image_critic
    convs = [l for l in critic.layers if isinstance(l, keras.layers.Conv2D)]
    assert len(convs) == 2
    assert all(l.compute_dtype == ("bfloat16" if bf16 else "float32") for l in convs)
    assert critic.get_layer("realism_logit").compute_dtype == "float32"
    out = critic([np.zeros((3, 28, 28, 1), "float32"), np.eye(10, dtype="float32")[:3]])
    assert keras.backend.standardize_dtype(out.dtype) == "float32" and out.shape == (3, 1)


@pytest.mark.parametrize("flags, expected", [
    ("fpu sse2 avx2 fma", False),
    ("fpu avx2 avx512f avx512_bf16", True),
    ("fpu avx2 amx_bf16 amx_tile", True),
    ("fpu avx2 amx_tile", False),
])
def test_bf16_units_are_read_from_the_cpu_flags(tmp_path, flags, expected):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nmodel name\t: Fake amx_bf16 CPU\nflags\t\t: {flags}\n")
    assert has_bf16_units(str(cpuinfo)) is expected
    assert has_bf16_units(str(tmp_path / "missing")) is False


def test_a_card_names_the_cpu_from_its_model_name_line(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nvendor_id\t: GenuineIntel\n"
                       "model name\t: Fake Xeon(R) 9000\nflags\t\t: fpu\n")
    assert cpu_description(str(cpuinfo)).startswith("Fake Xeon(R) 9000, ")
    assert cpu_description(str(cpuinfo)).endswith(" CPUs")
    assert cpu_description(str(tmp_path / "missing")).startswith("an unnamed CPU, ")


def test_training_works_with_float32_weights_and_outputs(trained, tiny_data):
    losses = trained.history["loss"]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]
    model = trained.model
    assert all(w.dtype == "float32" for w in model.weights)
    mean, log_var = model.encode(tiny_data.x_test[:5])
    assert mean.dtype == np.float32 and log_var.dtype == np.float32
    out = model.decode(mean)
    assert out.dtype == np.float32 and out.shape == (5, 28, 28)
    assert np.all((out >= 0) & (out <= 1))
    losses = model.compute_losses(tiny_data.x_test[:5, ..., None], tiny_data.y_test[:5])
    assert all(keras.backend.standardize_dtype(v.dtype) == "float32" for v in losses.values())


def test_checkpoint_round_trip_keeps_the_option(trained, tiny_data, tmp_path):
    path = vae_core.save_checkpoint(trained.model, tmp_path / "ckpt", trained.history)
    loaded = vae_core.load_checkpoint(path)
    assert loaded.config == trained.model.config
    z = np.random.default_rng(0).normal(size=(4, 2)).astype(np.float32)
    np.testing.assert_allclose(loaded.decode(z), trained.model.decode(z), atol=1e-6)


def test_old_configs_load_with_bf16_off_and_the_cli_has_a_flag():
    old = VAEConfig().to_dict()
    del old["bf16"]
    assert VAEConfig.from_dict(old).bf16 is False
    assert build_parser().parse_args(["train", "--out", "x", "--bf16"]).bf16 is True
    assert build_parser().parse_args(["train", "--out", "x"]).bf16 is False
    with pytest.raises(vae_core.ConfigError, match="bf16"):
        VAEConfig(bf16="yes")
