import math

import pytest

from vae_core.config import ConfigError, VAEConfig, parse_hidden


def test_defaults_are_valid_and_round_trip_through_json():
    config = VAEConfig(conditional=True, hidden=(256, 128), beta=0.0)
    assert VAEConfig.from_json(config.to_json()) == config


def test_list_hidden_from_json_becomes_tuple():
    assert VAEConfig.from_dict({"hidden": [64, 32]}).hidden == (64, 32)


@pytest.mark.parametrize("changes, words", [
    ({"latent_dim": 0}, "latent_dim"),
    ({"latent_dim": 2.5}, "latent_dim"),
    ({"beta": -1.0}, "beta"),
    ({"beta": math.inf}, "beta"),
    ({"learning_rate": 0.0}, "learning_rate"),
    ({"learning_rate": math.nan}, "learning_rate"),
    ({"learning_rate": -1e-3}, "learning_rate"),
    ({"lr_schedule": "step"}, "learning-rate schedule"),
    ({"ema_momentum": 1.0}, "ema_momentum"),
    ({"adam_beta1": 1.0}, "adam_beta1"),
    ({"adam_beta1": -0.1}, "adam_beta1"),
    ({"ema_momentum": -0.1}, "ema_momentum"),
    ({"batch_size": 0}, "batch_size"),
    ({"epochs": 0}, "epochs"),
    ({"dataset": "cifar10"}, "dataset"),
    ({"arch": "transformer"}, "architecture"),
    ({"recon_loss": "l1"}, "reconstruction loss"),
    ({"hidden": ()}, "hidden"),
    ({"hidden": (512, 0)}, "hidden"),
    ({"kl_warmup_epochs": -1}, "kl_warmup_epochs"),
    ({"seed": -5}, "seed"),
    ({"conditional": "yes"}, "conditional"),
    ({"encoder_conditional": 1}, "encoder_conditional"),
    ({"encoder_conditional": True}, "needs a conditional model"),
    ({"consistency_weight": -0.5, "conditional": True}, "consistency_weight"),
    ({"consistency_weight": math.nan, "conditional": True}, "consistency_weight"),
    ({"consistency_weight": 1.0}, "needs a conditional model"),
    ({"style_adversary_weight": -1.0, "conditional": True}, "style_adversary_weight"),
    ({"style_adversary_weight": math.inf, "conditional": True}, "style_adversary_weight"),
    ({"style_adversary_weight": 1.0}, "needs a conditional model"),
    ({"perceptual_weight": -1.0, "conditional": True}, "perceptual_weight"),
    ({"perceptual_weight": 1.0}, "needs a conditional model"),
    ({"moment_matching_weight": -1.0, "conditional": True}, "moment_matching_weight"),
    ({"moment_matching_weight": 1.0}, "needs a conditional model"),
    ({"decoded_styles": "posterior"}, "Unknown decoded styles"),
    ({"class_feature_matching_weight": -1.0, "conditional": True},
     "class_feature_matching_weight"),
    ({"class_feature_matching_weight": 1.0}, "class_feature_matching_weight needs a conditional"),
    ({"realism_weight": -1.0}, "realism_weight must be a finite number >= 0"),
    ({"realism_weight": math.nan, "conditional": True}, "realism_weight"),
    ({"realism_weight": True}, "realism_weight"),
    ({"critic_width": 0}, "critic_width"),
    ({"critic_depth": 0}, "critic_depth"),
    ({"decoder_detail_convs": 5, "arch": "conv"}, "decoder_detail_convs"),
    ({"decoder_detail_convs": 1}, "decoder_detail_convs needs the conv architecture"),
    ({"critic_depth": 5}, "critic_depth"),
    ({"critic_gradient_penalty": -1.0}, "critic_gradient_penalty"),
    ({"critic_gradient_penalty": 1.0}, "critic_gradient_penalty needs the realism term"),
    ({"realism_on_reconstructions": True}, "needs the realism term on"),
    ({"realism_on_reconstructions": 1, "realism_weight": 1.0}, "must be true or false"),
    ({"sample_temperature": 0.0}, "sample_temperature"),
    ({"sample_temperature": 3.0}, "sample_temperature"),
    ({"conv_width": 0}, "conv_width"),
    ({"style_prior_components": -1}, "style_prior_components"),
    ({"style_prior_components": 2.0}, "style_prior_components"),
    ({"class_matched_styles": True}, "needs a conditional model"),
    ({"class_matched_styles": "yes", "conditional": True}, "must be true or false"),
    ({"class_style_anchors": 100, "conditional": True}, "needs class_matched_styles on"),
    ({"class_style_anchors": -1, "conditional": True, "class_matched_styles": True},
     "class_style_anchors must be a whole number"),
    ({"class_style_anchors": 1.5, "conditional": True, "class_matched_styles": True},
     "class_style_anchors must be a whole number"),
    ({"class_style_bandwidth": 0.0}, "class_style_bandwidth must be a number in"),
    ({"class_style_bandwidth": math.nan}, "class_style_bandwidth"),
])
def test_impossible_values_raise_one_clear_error(changes, words):
    with pytest.raises(ConfigError, match=words):
        VAEConfig(**changes)


def test_config_error_is_a_value_error_for_callers_that_catch_broadly():
    assert issubclass(ConfigError, ValueError)


def test_unknown_fields_and_bad_json_are_config_errors():
    with pytest.raises(ConfigError, match="Unknown config field"):
        VAEConfig.from_dict({"latent": 3})
    with pytest.raises(ConfigError, match="not valid JSON"):
        VAEConfig.from_json("{nope")


def test_parse_hidden():
    assert parse_hidden("512, 256") == (512, 256)
    with pytest.raises(ConfigError, match="comma-separated"):
        parse_hidden("big")


def test_decoder_input_adds_class_slots_only_when_conditional():
    assert VAEConfig(latent_dim=4).decoder_input_dim == 4
    assert VAEConfig(latent_dim=4, conditional=True).decoder_input_dim == 14


def test_a_config_json_from_before_the_sharp_recipe_loads_with_the_old_behaviour():
    old = {"arch": "mlp", "batch_size": 128, "beta": 4.0, "conditional": True,
           "dataset": "fashion_mnist", "epochs": 20, "hidden": [400], "kl_warmup_epochs": 0,
           "latent_dim": 8, "learning_rate": 0.001, "recon_loss": "bce", "seed": 0}
    config = VAEConfig.from_dict(old)
    assert not config.encoder_conditional and config.consistency_weight == 0
    assert config.style_adversary_weight == 0
    assert config.conv_width == 32 and config.style_prior_components == 0
    assert not config.realism_on_reconstructions and not config.class_matched_styles
    assert config.class_style_anchors == 0 and config.class_style_bandwidth == 0.5


def test_presets_are_valid_sharp_conditional_configs():
    from vae_core.config import PRESETS

    assert {"sharp_conditional_mnist", "sharp_conditional_fashion"} <= set(PRESETS)
    for preset in PRESETS.values():
        assert preset.conditional and preset.encoder_conditional
        assert preset.latent_dim >= 8 and preset.realism_weight > 0
        assert VAEConfig.from_json(preset.to_json()) == preset
    # Both critics also judge reconstructions; MNIST samples class-matched styles, Fashion
    # N(0, I), which measured better there (checkpoints/TUNING.md)
    assert all(p.realism_on_reconstructions for p in PRESETS.values())
    assert PRESETS["sharp_conditional_mnist"].class_matched_styles
    assert PRESETS["sharp_conditional_mnist"].class_style_anchors == 3000
    assert not PRESETS["sharp_conditional_fashion"].class_matched_styles


def test_the_realism_term_needs_no_class_slots():
    # The critic judges unconditional decodes too; only the class-term weights need class slots.
    assert VAEConfig(realism_weight=2.0).realism_weight == 2.0
