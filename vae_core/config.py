"""The single, validated description of an experiment.

A `VAEConfig` is what the CLI parses (one flag per field, help from the field), what the Train
page edits and what a checkpoint stores beside its weights. Construction validates every field,
so an impossible experiment fails before any TensorFlow work starts, with a message a person can
act on. `PRESETS` are named recipes: the shipped models and the Train page's quick ones.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass

DATASETS = ("mnist", "fashion_mnist")
ARCHITECTURES = ("mlp", "conv")
RECON_LOSSES = ("bce", "mse")
DECODED_STYLES = ("shuffled", "prior")
AVERAGING_MOMENTUM = 0.998
"""The weight-averaging momentum the Fashion recipe uses (about the last 500 steps)."""
NUM_CLASSES = 10
IMAGE_SHAPE = (28, 28, 1)

RETIRED_TAG = "research-pass-15"
RETIRED = {
    "lr_schedule": "constant", "bf16": False, "critic_depth": 2, "critic_gradient_penalty": 0.0,
    "perceptual_weight": 0.0, "moment_matching_weight": 0.0,
    "class_feature_matching_weight": 0.0, "sample_temperature": 1.0,
}
"""Options removed after the tuning log's fifteenth pass, with the value that meant "off"; a
saved config holding that value loads as before, any other value names the git tag to use."""
RETIRED_VALUES = {"recon_loss": ("gaussian",)}
MOVED = ("int8_dense",)
"""Fields that used to be settings and are now facts about a saved model (see checkpoints)."""


class ConfigError(ValueError):
    """An experiment setting that cannot work; the message says which and why."""


def setting(default, help: str, *, choices=None, low=None, high=None, flag=None):
    """A config field with what the CLI, the page and validation need to know about it.

    `low`/`high` bound numbers (inclusive; a float field with high=1 below 1 is written as
    high=(1, "open")); `flag` replaces the CLI flag derived from the field name.
    """
    return dataclasses.field(default=default, metadata={
        "help": help, "choices": choices, "low": low, "high": high, "flag": flag})


@dataclass(frozen=True)
class VAEConfig:
    dataset: str = setting("mnist", "training images: handwritten digits or clothes",
                           choices=DATASETS)
    arch: str = setting("mlp", "encoder and decoder: dense layers (fast) or convolutions",
                        choices=ARCHITECTURES)
    latent_dim: int = setting(20, "size of the style latent z (conditional models add 10 class "
                                  "slots)", low=1, high=512)
    conditional: bool = setting(False, "digit-conditioned: a classifier's softmax joins z before "
                                       "the decoder")
    beta: float = setting(1.0, "weight of the KL term; 0 switches KL off", low=0.0)
    kl_warmup_epochs: int = setting(0, "epochs over which the KL weight ramps from 0 to beta",
                                    low=0, high=10_000)
    recon_loss: str = setting("bce", "reconstruction loss summed over pixels: bce (Bernoulli) or "
                                     "mse (squared error)", choices=RECON_LOSSES)
    hidden: tuple[int, ...] = setting((512,), "dense layer sizes, e.g. 512 or 512,256 (conv "
                                              "models: after the convolutions)")
    learning_rate: float = setting(1e-3, "Adam's learning rate", low=(0.0, "open"), high=1.0,
                                   flag="--lr")
    adam_beta1: float = setting(0.9, "Adam's first-moment decay", low=0.0, high=(1.0, "open"))
    ema_momentum: float = setting(0.0, "finish on a moving average of the weights with this "
                                       "momentum, e.g. 0.998 (0 = off)",
                                  low=0.0, high=(1.0, "open"))
    batch_size: int = setting(128, "images per update step", low=1, high=60_000)
    epochs: int = setting(5, "passes over the training images", low=1, high=10_000)
    seed: int = setting(0, "fixes the initial weights and the data order", low=0, high=2**31 - 1)
    encoder_conditional: bool = setting(False, "conditional models: the encoder also reads the "
                                               "classifier's softmax, q(z | x, c)")
    consistency_weight: float = setting(0.0, "conditional models: weight of the class-"
                                             "consistency loss (decoded random classes must be "
                                             "read as asked; 0 = off)", low=0.0)
    decoded_styles: str = setting("shuffled", "styles the consistency and realism terms decode "
                                              "with random classes: the batch's own, shuffled, "
                                              "or fresh N(0, I) draws", choices=DECODED_STYLES)
    conv_width: int = setting(32, "conv models: channels of the first convolution (the second "
                                  "has twice as many)", low=1, high=512)
    decoder_detail_convs: int = setting(0, "conv models: extra 3x3 convolutions at full 28x28 "
                                           "resolution before the decoder's last layer",
                                        low=0, high=4)
    style_adversary_weight: float = setting(0.0, "conditional models: weight of the adversary "
                                                 "that keeps the class out of the style (0 = off)",
                                            low=0.0)
    realism_weight: float = setting(0.0, "weight of the realism term: an image critic the decoder "
                                         "learns to fool, for sharp strokes (0 = off)", low=0.0)
    critic_width: int = setting(16, "channels of the realism critic's first convolution (the "
                                    "second has twice as many)", low=1, high=512)
    realism_on_reconstructions: bool = setting(False, "the realism critic also judges the "
                                                      "batch's reconstructions")
    style_prior_components: int = setting(0, "Gaussian-mixture components fitted to the encoded "
                                             "training styles after training (0 = none)",
                                          low=0, high=1000)
    class_matched_styles: bool = setting(False, "conditional models: after training, fit each "
                                                "class's own styles and sample from them")
    class_style_anchors: int = setting(0, "with class-matched styles: encoded training styles "
                                          "kept per class, sampled as a kernel density around "
                                          "them (0 = one Gaussian per class)",
                                       low=0, high=10_000)
    class_style_bandwidth: float = setting(0.5, "with kept styles: the width of the kernel "
                                                "around each, as a fraction of its class's "
                                                "spread", low=(0.0, "open"), high=2.0)

    def __post_init__(self):
        if isinstance(self.hidden, list):  # from JSON or a form
            object.__setattr__(self, "hidden", tuple(self.hidden))
        for problem in self._problems():
            raise ConfigError(problem)

    def _problems(self):
        for f in dataclasses.fields(self):
            yield from _field_problems(f, getattr(self, f.name))
        needs_classes = {
            "encoder_conditional": "the encoder reads the classifier's softmax",
            "consistency_weight": "the loss asks the model's classifier to read the requested "
                                  "class in decoded samples",
            "style_adversary_weight": "it keeps the class out of the style latent",
            "class_matched_styles": "it fits one style distribution per class",
        }
        for name, why in needs_classes.items():
            if getattr(self, name) and not self.conditional:
                yield (f"{name} needs a conditional model: {why}, and only conditional models "
                       "have class slots.")
        if self.realism_on_reconstructions and not self.realism_weight:
            yield ("realism_on_reconstructions needs the realism term on (realism_weight > 0): "
                   "it shows the image critic the reconstructions too.")
        if self.decoder_detail_convs and self.arch != "conv":
            yield ("decoder_detail_convs needs the conv architecture: the MLP decoder has no "
                   "feature maps to refine.")
        if self.class_style_anchors and not self.class_matched_styles:
            yield ("class_style_anchors needs class_matched_styles on: the kept styles are "
                   "placed in each class's fitted spread.")

    @property
    def decoder_input_dim(self) -> int:
        return self.latent_dim + (NUM_CLASSES if self.conditional else 0)

    def replace(self, **changes) -> "VAEConfig":
        return dataclasses.replace(self, **changes)

    def differences(self, other: "VAEConfig") -> dict:
        """{field: (self's value, other's value)} for every field where the two differ."""
        return {f.name: (getattr(self, f.name), getattr(other, f.name))
                for f in dataclasses.fields(self)
                if getattr(self, f.name) != getattr(other, f.name)}

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["hidden"] = list(self.hidden)
        return d

    @classmethod
    def from_dict(cls, data: dict) -> "VAEConfig":
        """A config from its dict, as saved; retired options at their "off" value are dropped."""
        if not isinstance(data, dict):
            raise ConfigError(f"A config must be a JSON object, not {type(data).__name__}.")
        data = {k: v for k, v in data.items() if k not in MOVED}
        for name, neutral in RETIRED.items():
            if name in data and (value := data.pop(name)) != neutral:
                raise ConfigError(_retired(f"{name}={value}"))
        for name, values in RETIRED_VALUES.items():
            if data.get(name) in values:
                raise ConfigError(_retired(f"{name}={data[name]}"))
        unknown = sorted(set(data) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ConfigError(f"Unknown config field(s): {', '.join(unknown)}.")
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "VAEConfig":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError(f"The config is not valid JSON: {e}.") from None
        return cls.from_dict(data)


def _retired(what: str) -> str:
    return (f"This model was trained with {what}, an option VAE Lab no longer has; it lives on "
            f"at the git tag {RETIRED_TAG} (git checkout {RETIRED_TAG}).")


def _field_problems(f: dataclasses.Field, value):
    """What is wrong with one field's value, judged by its type and its `setting` metadata."""
    meta, name = f.metadata, f.name
    if f.type == "bool":
        if not isinstance(value, bool):
            yield f"'{name}' must be true or false, not {value!r}."
    elif f.type == "str":
        if value not in meta["choices"]:
            yield f"Unknown {name} {value!r}: choose one of {', '.join(meta['choices'])}."
    elif f.type == "int":
        lo, hi = meta["low"], meta["high"]
        if not _is_int(value) or not lo <= value <= hi:
            yield f"{name} must be a whole number from {lo} to {hi}, not {value!r}."
    elif f.type == "float":
        if not _is_real(value) or not math.isfinite(value) or not _within(value, meta):
            yield f"{name} must be a finite number {_range_text(meta)}, not {value!r}."
    elif not (isinstance(value, tuple) and value
              and all(_is_int(h) and 1 <= h <= 8192 for h in value)):  # hidden
        yield (f"{name} must be one or more layer sizes between 1 and 8192 (e.g. 512 or "
               f"512,256), not {value!r}.")


def _bound(b):
    return (b, "closed") if not isinstance(b, tuple) else b


def _within(value, meta) -> bool:
    if meta["low"] is not None:
        lo, kind = _bound(meta["low"])
        if value < lo or (kind == "open" and value == lo):
            return False
    if meta["high"] is not None:
        hi, kind = _bound(meta["high"])
        if value > hi or (kind == "open" and value == hi):
            return False
    return True


def _range_text(meta) -> str:
    parts = []
    if meta["low"] is not None:
        lo, kind = _bound(meta["low"])
        parts.append(f"{'>' if kind == 'open' else '>='} {lo:g}")
    if meta["high"] is not None:
        hi, kind = _bound(meta["high"])
        parts.append(f"{'<' if kind == 'open' else '<='} {hi:g}")
    return " and ".join(parts)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_real(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def parse_hidden(text: str) -> tuple[int, ...]:
    """'512,256' -> (512, 256), with a ConfigError a person can read for anything else."""
    try:
        return tuple(int(part) for part in str(text).replace(" ", "").split(",") if part)
    except ValueError:
        raise ConfigError(f"hidden must be comma-separated layer sizes like 512,256, "
                          f"not {text!r}.") from None


# Named recipes: `python -m vae_core train --preset NAME`, the Train page's choices, and what
# checkpoints/make_all.sh ships. docs/tuning.md records how each was chosen.
_SHARP = dict(arch="conv", conv_width=32, latent_dim=16, conditional=True, hidden=(256,),
              encoder_conditional=True, realism_weight=3.0, realism_on_reconstructions=True)
_LATENT_2D = dict(arch="mlp", latent_dim=2, hidden=(512,), epochs=20)
# The quick recipes: MLP networks (a conv epoch costs several of theirs), a roomy 32-D style,
# each class's own kept styles close around real ones; MNIST adds a narrow realism critic.
_QUICK = dict(arch="mlp", latent_dim=32, conditional=True, hidden=(512,), batch_size=256,
              learning_rate=2e-3, encoder_conditional=True, consistency_weight=3.0,
              class_matched_styles=True, class_style_anchors=300, class_style_bandwidth=0.15)
_QUICK_CRITIC = dict(realism_weight=3.0, critic_width=8, realism_on_reconstructions=True)
_QUICK_2D = dict(arch="mlp", latent_dim=2, hidden=(512,), batch_size=256, learning_rate=2e-3)
PRESETS = {
    "sharp_conditional_mnist": VAEConfig(
        dataset="mnist", **_SHARP, epochs=10, consistency_weight=1.0, style_adversary_weight=1.0,
        style_prior_components=50, class_matched_styles=True, class_style_anchors=3000),
    "sharp_conditional_fashion": VAEConfig(
        dataset="fashion_mnist", **_SHARP, epochs=15, consistency_weight=4.0,
        decoded_styles="prior", critic_width=64, decoder_detail_convs=1, adam_beta1=0.5,
        ema_momentum=AVERAGING_MOMENTUM),
    # The Train page's quick recipes: a good model in about a minute on two cores.
    "quick_conditional_mnist": VAEConfig(dataset="mnist", **_QUICK, **_QUICK_CRITIC, epochs=4),
    "longer_conditional_mnist": VAEConfig(dataset="mnist", **_QUICK, **_QUICK_CRITIC,
                                          epochs=25),
    "quick_conditional_fashion": VAEConfig(dataset="fashion_mnist", **_QUICK, epochs=8),
    "longer_conditional_fashion": VAEConfig(dataset="fashion_mnist", **_QUICK, epochs=40),
    "quick_mnist": VAEConfig(dataset="mnist", **_QUICK_2D, epochs=10),
    "longer_mnist": VAEConfig(dataset="mnist", **_QUICK_2D, epochs=50),
    "quick_fashion": VAEConfig(dataset="fashion_mnist", **_QUICK_2D, epochs=10),
    "longer_fashion": VAEConfig(dataset="fashion_mnist", **_QUICK_2D, epochs=50),
    "mnist_2d_kl_on": VAEConfig(dataset="mnist", **_LATENT_2D, beta=1.0),
    "mnist_2d_kl_off": VAEConfig(dataset="mnist", **_LATENT_2D, beta=0.0),
    "fashion_2d_kl_on": VAEConfig(dataset="fashion_mnist", **_LATENT_2D, beta=1.0),
}
