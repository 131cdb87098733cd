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
    ({"ema_momentum": 1.0}, "ema_momentum"),
    ({"adam_beta1": 1.0}, "adam_beta1"),
    ({"adam_beta1": -0.1}, "adam_beta1"),
    ({"ema_momentum": -0.1}, "ema_momentum"),
    ({"batch_size": 0}, "batch_size"),
    ({"epochs": 0}, "epochs"),
    ({"dataset": "cifar10"}, "dataset"),
    ({"arch": "transformer"}, "Unknown arch"),
    ({"recon_loss": "l1"}, "Unknown recon_loss"),
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
    ({"decoded_styles": "posterior"}, "Unknown decoded_styles"),
    ({"class_style_bandwidth": 0.0}, "class_style_bandwidth must be a finite number > 0"),
    ({"realism_weight": -1.0}, "realism_weight must be a finite number >= 0"),
    ({"realism_weight": math.nan, "conditional": True}, "realism_weight"),
    ({"realism_weight": True}, "realism_weight"),
    ({"critic_width": 0}, "critic_width"),
    ({"decoder_detail_convs": 5, "arch": "conv"}, "decoder_detail_convs"),
    ({"decoder_detail_convs": 1}, "decoder_detail_convs needs the conv architecture"),
    ({"realism_on_reconstructions": True}, "needs the realism term on"),
    ({"realism_on_reconstructions": 1, "realism_weight": 1.0}, "must be true or false"),
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
])
def test_impossible_values_raise_one_clear_error(changes, words):
    with pytest.raises(ConfigError, match=words):
        VAEConfig(**changes)


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


def test_every_preset_round_trips_through_json():
    from vae_core.config import PRESETS

    for preset in PRESETS.values():
        assert VAEConfig.from_json(preset.to_json()) == preset


def test_a_config_saved_before_the_clean_up_loads_when_its_retired_options_were_off():
    """Checkpoints from research-pass-15 name every option of their day; at the value that
    meant "off" they load as before, and int8_dense (now a fact about the weights) is ignored."""
    old = {**VAEConfig(conditional=True).to_dict(), "bf16": False, "critic_depth": 2,
           "critic_gradient_penalty": 0.0, "lr_schedule": "constant", "perceptual_weight": 0.0,
           "moment_matching_weight": 0.0, "class_feature_matching_weight": 0.0,
           "sample_temperature": 1.0, "int8_dense": True}
    assert VAEConfig.from_dict(old) == VAEConfig(conditional=True)


@pytest.mark.parametrize("option", [{"critic_depth": 3}, {"perceptual_weight": 2.0},
                                    {"lr_schedule": "cosine"}, {"recon_loss": "gaussian"},
                                    {"bf16": True}])
def test_a_config_that_used_a_retired_option_names_the_tag_that_has_it(option):
    with pytest.raises(ConfigError, match=r"no longer has.*git checkout research-pass-15"):
        VAEConfig.from_dict({**VAEConfig().to_dict(), **option})


def test_differences_names_each_setting_that_differs():
    a, b = VAEConfig(), VAEConfig(beta=0.0, latent_dim=2)
    assert a.differences(b) == {"latent_dim": (20, 2), "beta": (1.0, 0.0)}
    assert a.differences(a) == {}


def test_the_realism_term_needs_no_class_slots():
    # The critic judges unconditional decodes too; only the class-term weights need class slots.
    assert VAEConfig(realism_weight=2.0).realism_weight == 2.0
