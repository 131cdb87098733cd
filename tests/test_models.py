import numpy as np
import pytest
import keras
from keras import ops

from vae_core.config import VAEConfig
from vae_core.losses import kl_divergence, reconstruction_loss
from vae_core.models import VAE
from vae_core.training import build_model

VARIANTS = [(arch, cond) for arch in ("mlp", "conv") for cond in (False, True)]


def small(arch="mlp", conditional=False, **kw):
    return VAEConfig(arch=arch, conditional=conditional, latent_dim=kw.pop("latent_dim", 3),
                     hidden=kw.pop("hidden", (32,)), **kw)


@pytest.mark.parametrize("arch, conditional", VARIANTS)
def test_shapes_for_every_variant(arch, conditional, tiny_data):
    model = VAE(small(arch, conditional))
    x = tiny_data.x_test[:5]
    mean, log_var = model.encode(x)
    assert mean.shape == log_var.shape == (5, 3)
    z = np.zeros((4, model.config.decoder_input_dim), np.float32)
    images = model.decode(z)
    assert images.shape == (4, 28, 28) and images.dtype == np.float32
    assert 0.0 <= images.min() and images.max() <= 1.0
    assert ops.convert_to_numpy(model(x[..., None])).shape == (5, 28, 28, 1)
    assert model.generate(list(range(10)), seed=1).shape == (10, 28, 28)
    if conditional:
        probs = model.classify(x)
        assert probs.shape == (5, 10)
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    else:
        with pytest.raises(ValueError, match="unconditional"):
            model.classify(x)


def test_conv_encoder_reaches_7x7x64():
    model = VAE(small("conv"))
    shapes = [layer.output.shape for layer in model.encoder.layers if "conv" in layer.name]
    assert tuple(shapes[-1][1:]) == (7, 7, 64)


def test_encode_accepts_with_or_without_channel_axis(tiny_data):
    model = VAE(small())
    a = model.encode(tiny_data.x_test[:3])[0]
    b = model.encode(tiny_data.x_test[:3, ..., None])[0]
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="28, 28"):
        model.encode(np.zeros((2, 32, 32)))


@pytest.mark.parametrize("arch, conditional", [("mlp", True), ("conv", False)])
def test_loss_decreases_on_a_real_batch(arch, conditional, tiny_data):
    model = build_model(small(arch, conditional, learning_rate=3e-3))
    x, y = tiny_data.x_train[:64, ..., None], tiny_data.y_train[:64]
    first = model.train_on_batch(x, y, return_dict=True)
    for _ in range(25):
        last = model.train_on_batch(x, y, return_dict=True)
    # Trackers are running means across calls, so compare fresh evaluations instead.
    before = first["loss"]
    after = float(np.mean(ops.convert_to_numpy(model.compute_losses(x, y)["loss"])))
    assert after < 0.8 * before, (before, after)
    if conditional:
        assert "classification_loss" in last and "accuracy" in last


def test_kl_is_exactly_zero_at_the_prior_and_matches_closed_form():
    zeros = np.zeros((4, 6), np.float32)
    assert np.all(ops.convert_to_numpy(kl_divergence(zeros, zeros)) == 0.0)
    # mean 1, var e^1: 0.5 * (1 + e - 1 - 1) = 0.5 * (e - 1) per dim
    kl = ops.convert_to_numpy(kl_divergence(np.ones((1, 2), np.float32),
                                            np.ones((1, 2), np.float32)))
    np.testing.assert_allclose(kl, 0.5 * (np.e - 1), rtol=1e-6)


def test_bce_from_logits_matches_the_textbook_formula():
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(3, 28, 28, 1)).astype(np.float32)
    logits = rng.normal(size=(3, 28, 28, 1)).astype(np.float32)
    p = 1 / (1 + np.exp(-logits))
    expected = -(x * np.log(p) + (1 - x) * np.log(1 - p)).reshape(3, -1).sum(axis=1)
    got = ops.convert_to_numpy(reconstruction_loss(x, logits, "bce"))
    np.testing.assert_allclose(got, expected, rtol=1e-4)
    sse = ((x - p) ** 2).reshape(3, -1).sum(axis=1)
    np.testing.assert_allclose(ops.convert_to_numpy(reconstruction_loss(x, logits, "mse")),
                               sse, rtol=1e-4)


@pytest.mark.parametrize("conditional", [False, True])
def test_beta_zero_removes_kl_from_the_total(conditional, tiny_data):
    model = VAE(small(conditional=conditional, beta=0.0))
    x, y = tiny_data.x_train[:16, ..., None], tiny_data.y_train[:16]
    out = {k: ops.convert_to_numpy(v) for k, v in model.compute_losses(x, y).items()}
    assert np.all(out["kl_loss"] > 0)  # KL is still measured...
    expected = out["reconstruction_loss"] + (out["classification_loss"] if conditional else 0)
    np.testing.assert_array_equal(out["loss"], expected)  # ...but not optimised
    model_on = VAE(small(conditional=conditional, beta=1.0))
    model_on.set_weights(model.get_weights())
    model_on.kl_weight.assign(1.0)
    on = ops.convert_to_numpy(model_on.compute_losses(x, y)["loss"])
    assert np.all(on > out["loss"])


def test_generate_is_deterministic_and_shares_one_style_across_digits():
    model = VAE(small(conditional=True))
    a = model.generate(list(range(10)), seed=7)
    np.testing.assert_array_equal(a, model.generate(list(range(10)), seed=7))
    assert not np.allclose(a, model.generate(list(range(10)), seed=8))
    # Digit 3 alone, with the same seed, is the same image as in the row of ten: one style.
    np.testing.assert_allclose(model.generate([3], seed=7)[0], a[3], atol=1e-6)
    grid = model.generate_grid([7, 8], [1, 2])
    np.testing.assert_allclose(grid[0], a[[1, 2]], atol=1e-6)
    with pytest.raises(ValueError, match="between 0 and 9"):
        model.generate([10], seed=0)


def test_unconditional_generate_uses_only_the_count_of_digits():
    model = VAE(small())
    a = model.generate([0, 1, 2], seed=3)
    np.testing.assert_array_equal(a, model.generate([9, 9, 9], seed=3))
    assert not np.allclose(a[0], a[1])  # different prior samples, not one style repeated


def test_temperature_zero_gives_the_prior_mean_style():
    model = VAE(small(conditional=True))
    np.testing.assert_allclose(model.generate([4], seed=1, temperature=0.0),
                               model.generate([4], seed=2, temperature=0.0))


def test_restyle_writes_each_image_style_as_each_digit(tiny_data):
    model = VAE(VAEConfig(conditional=True, latent_dim=3, hidden=(16,)))
    x = tiny_data.x_test[:4]
    out = model.restyle(x, [0, 5, 9])
    assert out.shape == (4, 3, 28, 28) and out.dtype == np.float32
    styles = model.encode(x)[0]  # the posterior mean is the style: same as decoding by hand
    by_hand = model.decode(model.latent_codes(np.repeat(styles, 3, axis=0), [0, 5, 9] * 4))
    np.testing.assert_allclose(out.reshape(12, 28, 28), by_hand, atol=1e-6)
    assert model.restyle(x[0], range(10)).shape == (1, 10, 28, 28)
    with pytest.raises(ValueError, match="between 0 and 9"):
        model.restyle(x, [10])


def test_restyle_on_an_unconditional_model_says_what_it_needs():
    model = VAE(VAEConfig(conditional=False, latent_dim=2, hidden=(16,)))
    with pytest.raises(ValueError, match="restyle needs a digit-conditioned model"):
        model.restyle(np.zeros((1, 28, 28)), [1])


def sharp(**kw):
    return small(conditional=True, encoder_conditional=True, **kw)


def test_decode_with_the_wrong_width_names_the_expected_shape():
    model = VAE(small(conditional=True))
    with pytest.raises(ValueError, match=r"\(N, 13\) \(3 style dims \+ 10 class slots\)"):
        model.decode(np.zeros((4, 3), np.float32))  # style only, no class slots
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        VAE(small()).decode(np.zeros((2, 13), np.float32))
    assert model.decode(np.zeros(13, np.float32)).shape == (1, 28, 28)  # one code, 1-D, is fine


def test_restyle_writes_each_images_style_as_every_digit(tiny_data):
    model = VAE(sharp())
    out = model.restyle(tiny_data.x_test[:4], [0, 3, 9])
    assert out.shape == (4, 3, 28, 28) and out.dtype == np.float32
    # The column for digit 3 is the image's own style decoded with one-hot(3).
    style, _ = model.encode(tiny_data.x_test[:4])
    np.testing.assert_allclose(out[:, 1], model.decode(model.latent_codes(style, [3] * 4)),
                               atol=1e-6)
    with pytest.raises(ValueError, match="restyle needs a digit-conditioned model"):
        VAE(small()).restyle(tiny_data.x_test[:2], [1])


def test_class_conditioned_encoder_reads_the_classifier(tiny_data):
    model = VAE(sharp())
    assert [tuple(i.shape) for i in model.encoder.inputs] == [(None, 28, 28, 1), (None, 10)]
    x = tiny_data.x_test[:5]
    mean, _ = model.encode(x)
    direct = model.encoder([x[..., None], model.classify(x)])[0]
    np.testing.assert_allclose(mean, ops.convert_to_numpy(direct), atol=1e-5)


def test_consistency_loss_is_reported_and_weighted_into_the_total(tiny_data):
    model = build_model(sharp(consistency_weight=2.0, learning_rate=3e-3))
    x, y = tiny_data.x_train[:64, ..., None], tiny_data.y_train[:64]
    out = {k: ops.convert_to_numpy(v) for k, v in model.compute_losses(x, y).items()}
    assert out["consistency_loss"].shape == (64,) and np.all(out["consistency_loss"] > 0)
    base = out["reconstruction_loss"] + out["kl_loss"] + out["classification_loss"]
    np.testing.assert_allclose(out["loss"], base + 2.0 * out["consistency_loss"], rtol=1e-5)
    logs = model.train_on_batch(x, y, return_dict=True)
    assert "consistency_loss" in logs and np.isfinite(logs["consistency_loss"])


@pytest.mark.parametrize("weight, network", [
    ("consistency_weight", "decoder"), ("style_adversary_weight", "encoder"),
    ("realism_weight", "decoder")])
def test_a_weighted_term_trains_only_its_own_network(tiny_data, weight, network):
    """Scaling one term's weight changes one SGD step (a step is its gradient) of the network
    the term trains, and of no other network."""
    x, y = tiny_data.x_train[:32, ..., None], tiny_data.y_train[:32]
    names = [n for n in ("encoder", "decoder", "classifier", "style_adversary", "image_critic")]

    def after_one_step(value, start=None):
        m = build_model(sharp(**{weight: value}))
        if start is not None:
            m.set_weights(start)
        m.compile(optimizer=keras.optimizers.SGD(0.1))
        m.train_on_batch(x, y)
        return m, {n: [w.numpy().copy() for w in getattr(m, n).trainable_weights]
                   for n in names if getattr(m, n) is not None}

    first, _ = after_one_step(1.0)
    start = first.get_weights()
    _, once = after_one_step(1.0, start)
    _, often = after_one_step(20.0, start)
    for name in once:
        moved = any(not np.allclose(a, b, atol=1e-5) for a, b in zip(once[name], often[name]))
        assert moved == (name == network), name


def test_conv_width_sets_the_channels():
    model = VAE(small("conv", conv_width=8))
    convs = [layer for layer in model.encoder.layers if "conv" in layer.name]
    assert [c.filters for c in convs] == [8, 16]


def test_decoder_detail_convs_add_full_resolution_convolutions():
    plain, detailed = VAE(small("conv", conv_width=8)), VAE(small("conv", conv_width=8,
                                                                   decoder_detail_convs=2))
    extra = [layer for layer in detailed.decoder.layers if type(layer) is keras.layers.Conv2D]
    assert not [layer for layer in plain.decoder.layers if type(layer) is keras.layers.Conv2D]
    assert [(c.filters, c.strides, c.output.shape[1:]) for c in extra] == [
        (8, (1, 1), (28, 28, 8))] * 2
    assert detailed.decoder(np.zeros((2, 3), "float32")).shape == (2, 28, 28, 1)


def test_critic_width_sets_the_critics_channels():
    model = VAE(small("conv", realism_weight=1.0, critic_width=8))
    convs = [layer for layer in model.image_critic.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [c.filters for c in convs] == [8, 16]


def test_style_adversary_trains_itself_and_the_encoder_only(tiny_data):
    """The adversary learns from a stop-gradient copy of the style mean; the leak term (its
    reading pushed to uniform) moves the encoder, never the adversary, classifier or decoder."""
    x, y = tiny_data.x_train[:64, ..., None], tiny_data.y_train[:64]
    model = build_model(sharp(style_adversary_weight=5.0, learning_rate=3e-3))
    out = {k: ops.convert_to_numpy(v) for k, v in model.compute_losses(x, y).items()}
    assert out["adversary_loss"].shape == (64,) and np.all(out["style_leak_loss"] > 0)
    base = out["reconstruction_loss"] + out["kl_loss"] + out["classification_loss"]
    np.testing.assert_allclose(out["loss"], base + out["adversary_loss"]
                               + 5.0 * out["style_leak_loss"], rtol=1e-5)

    def after_one_step(weight):
        m = build_model(sharp(style_adversary_weight=weight, learning_rate=3e-3))
        m.set_weights(model.get_weights())
        logs = m.train_on_batch(x, y, return_dict=True)
        assert 0 <= logs["adversary_accuracy"] <= 1 and np.isfinite(logs["adversary_loss"])
        return {name: [w.numpy().copy() for w in getattr(m, name).trainable_weights]
                for name in ("encoder", "decoder", "classifier", "style_adversary")}

    strong, weak = after_one_step(5.0), after_one_step(1e-6)
    for name in ("decoder", "classifier", "style_adversary"):  # the leak term does not reach them
        for a, b in zip(strong[name], weak[name]):
            np.testing.assert_allclose(a, b, atol=1e-5, err_msg=name)
    assert any(not np.allclose(a, b, atol=1e-5)  # ... but it does move the encoder
               for a, b in zip(strong["encoder"], weak["encoder"]))
    moved = [not np.allclose(a, b) for a, b in zip(strong["style_adversary"],
                                                    model.style_adversary.get_weights())]
    assert any(moved)  # and the adversary learns from its own loss


@pytest.mark.parametrize("conditional, on_recons", [(True, False), (False, False), (True, True)])
def test_realism_term_trains_the_decoder_and_the_critic_learns(tiny_data, conditional, on_recons):
    """The critic learns real vs decoded from its own loss (stop-gradient on the decoded images);
    the realism term (-log D(decoded)) moves the decoder and nothing else, even when the critic
    also judges reconstructions (whose codes come from the encoder)."""
    x, y = tiny_data.x_train[:64, ..., None], tiny_data.y_train[:64]
    base = sharp if conditional else small

    def config(**kw):
        return base(realism_on_reconstructions=on_recons, **kw)

    model = build_model(config(realism_weight=4.0, learning_rate=3e-3))
    out = {k: ops.convert_to_numpy(v) for k, v in model.compute_losses(x, y).items()}
    assert out["critic_loss"].shape == (64,) and np.all(out["realism_loss"] > 0)
    parts = out["reconstruction_loss"] + out["kl_loss"] + out.get("classification_loss", 0)
    np.testing.assert_allclose(
        out["loss"], parts + out["critic_loss"] + 4.0 * out["realism_loss"], rtol=1e-5)
    names = ("encoder", "decoder", "image_critic") + (("classifier",) if conditional else ())

    def after_one_step(weight):
        m = build_model(config(realism_weight=weight, learning_rate=3e-3))
        m.set_weights(model.get_weights())
        logs = m.train_on_batch(x, y, return_dict=True)
        assert np.isfinite(logs["critic_loss"]) and np.isfinite(logs["realism_loss"])
        return {name: [w.numpy().copy() for w in getattr(m, name).trainable_weights]
                for name in names}

    strong, weak = after_one_step(4.0), after_one_step(1e-6)
    for name in set(names) - {"decoder"}:  # the realism term reaches no other network
        for a, b in zip(strong[name], weak[name]):
            np.testing.assert_allclose(a, b, atol=1e-5, err_msg=name)
    assert any(not np.allclose(a, b, atol=1e-5)
               for a, b in zip(strong["decoder"], weak["decoder"]))
    assert any(not np.allclose(a, b)  # the critic learns from its own loss
               for a, b in zip(strong["image_critic"], model.image_critic.get_weights()))


def test_the_critics_loss_trains_the_critic_only(tiny_data, monkeypatch):
    """The critic's loss and the realism loss share one critic pass over the decoded images, so
    nothing but routing keeps the critic's loss out of the decoder: scaling it up must change
    the critic's step and no other network's (plain SGD, so a step is its gradient)."""
    x, y = tiny_data.x_train[:32, ..., None], tiny_data.y_train[:32]
    config = sharp(realism_weight=1.0, realism_on_reconstructions=True)
    model = build_model(config)
    names = ("encoder", "decoder", "classifier", "image_critic")

    def after_one_step(scale):
        m = build_model(config)
        m.set_weights(model.get_weights())
        m.compile(optimizer=keras.optimizers.SGD(0.1))
        compute_losses = m.compute_losses

        def scaled(*args, **kwargs):
            out = compute_losses(*args, **kwargs)
            return {**out, "critic_loss": scale * out["critic_loss"]}

        monkeypatch.setattr(m, "compute_losses", scaled)
        m.train_on_batch(x, y)
        return {name: [w.numpy().copy() for w in getattr(m, name).trainable_weights]
                for name in names}

    once, often = after_one_step(1.0), after_one_step(20.0)
    for name in ("encoder", "decoder", "classifier"):
        for a, b in zip(once[name], often[name]):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=name)
    assert any(not np.allclose(a, b, atol=1e-4)
               for a, b in zip(once["image_critic"], often["image_critic"]))


@pytest.mark.parametrize("conditional", [True, False])
@pytest.mark.parametrize("on_recons", [True, False])
def test_what_the_critic_is_shown_as_decoded_images(tiny_data, conditional, on_recons,
                                                     monkeypatch):
    """The critic's decoded images are the shuffled codes' images, followed, when it also judges
    reconstructions, by the batch's own reconstructions (same z as a forward pass) labelled with
    the true classes."""
    x, y = tiny_data.x_train[:16, ..., None], tiny_data.y_train[:16]
    config = (sharp if conditional else small)(realism_weight=1.0,
                                               realism_on_reconstructions=on_recons)
    model, twin = build_model(config), build_model(config)  # same seeds: the same z
    twin.set_weights(model.get_weights())
    seen, critic = [], model._critic

    def recording_critic(images, labels, training):
        seen.append((ops.convert_to_numpy(images),
                     None if labels is None else ops.convert_to_numpy(labels)))
        return critic(images, labels, training)

    monkeypatch.setattr(model, "_critic", recording_critic)
    model.compute_losses(x, y)
    assert len(seen) == 2  # one pass over the real images, one over all the decoded ones
    (real, _), (fakes, labels) = seen
    np.testing.assert_allclose(real.reshape(16, -1), x.reshape(16, -1))
    assert fakes.shape == ((32 if on_recons else 16), 28, 28, 1)
    reconstructions = ops.convert_to_numpy(twin(x)).reshape(16, -1)
    assert not np.allclose(fakes[:16].reshape(16, -1), reconstructions, atol=1e-3)
    if on_recons:
        np.testing.assert_allclose(fakes[16:].reshape(16, -1), reconstructions, atol=1e-5)
        if conditional:
            np.testing.assert_array_equal(labels[16:], y)


def test_a_model_without_the_realism_term_has_no_critic():
    model = VAE(sharp())
    assert model.image_critic is None and "critic_loss" not in model.trackers


def test_a_model_without_the_adversary_has_no_adversary_weights():
    model = VAE(sharp())
    assert model.style_adversary is None and "adversary_loss" not in model.trackers


@pytest.mark.parametrize("decoded_styles", ["shuffled", "prior"])
def test_decoded_styles_are_the_batchs_own_or_fresh_prior_draws(decoded_styles):
    """Twin models (same weights, same seed state) decode random classes for two batches of
    style codes: shuffled encoded styles follow the batch; prior draws ignore it, and their
    style part is N(0, I)."""
    config = small(conditional=True, consistency_weight=1.0, decoded_styles=decoded_styles)
    twins = [VAE(config), VAE(config)]
    twins[1].set_weights(twins[0].get_weights())
    z = np.random.default_rng(0).normal(size=(64, 3)).astype("float32")
    images = [ops.convert_to_numpy(twin._random_class_decodes(codes, False)[0])
              for twin, codes in zip(twins, (z, 5 * z + 3))]
    assert np.allclose(images[0], images[1]) == (decoded_styles == "prior")
    if decoded_styles == "prior":
        model = VAE(config)
        seen = []
        model._decoder_logits = lambda codes, training: seen.append(codes) or ops.zeros(
            (ops.shape(codes)[0], 28, 28, 1))
        model._random_class_decodes(np.zeros((4000, 3), np.float32), False)
        styles = ops.convert_to_numpy(seen[0])[:, :3]
        np.testing.assert_allclose(styles.mean(0), 0, atol=0.1)
        np.testing.assert_allclose(styles.std(0), 1, atol=0.1)
