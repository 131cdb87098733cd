"""The single, validated description of an experiment.

A `VAEConfig` is what the UI edits, what the CLI parses, and what a checkpoint stores beside its
weights. Construction validates every field, so an impossible experiment fails before any
TensorFlow work starts, with a message a person can act on.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field

DATASETS = ("mnist", "fashion_mnist")
ARCHITECTURES = ("mlp", "conv")
RECON_LOSSES = ("bce", "mse", "gaussian")
LR_SCHEDULES = ("constant", "cosine")
DECODED_STYLES = ("shuffled", "prior")
AVERAGING_MOMENTUM = 0.998
"""The weight-averaging momentum the Train page's switch and the Fashion recipe use (about the
last 500 steps, an epoch): checkpoints/TUNING.md, eleventh pass."""
NUM_CLASSES = 10
IMAGE_SHAPE = (28, 28, 1)


class ConfigError(ValueError):
    """An experiment setting that cannot work; the message says which and why."""


@dataclass(frozen=True)
class VAEConfig:
    dataset: str = "mnist"
    arch: str = "mlp"
    latent_dim: int = 20
    """Size of the style latent z (the 10 class slots of a conditional model come on top)."""
    conditional: bool = False
    beta: float = 1.0
    """Weight of the KL term; 0 switches KL off."""
    kl_warmup_epochs: int = 0
    """Epochs over which the KL weight ramps linearly from 0 to `beta` (0 = no warm-up)."""
    recon_loss: str = "bce"
    """"bce": Bernoulli likelihood on grey levels; "mse": summed squared error; "gaussian": a
    Gaussian likelihood whose one shared pixel variance is set to its optimum, the mean squared
    error (a calibrated decoder, Rybkin et al. 2021). On grey-level images the Bernoulli hardly
    penalises a wrong grey (its curvature there is a fraction of the Gaussian's at the data's
    noise level), so textures are left to blur: see checkpoints/TUNING.md, seventh pass."""
    hidden: tuple[int, ...] = (512,)
    """Dense layer sizes: the MLP's hidden layers, or the conv model's dense layers after 7x7x64."""
    learning_rate: float = 1e-3
    lr_schedule: str = "constant"
    """"constant": Adam at `learning_rate` throughout; "cosine": the rate falls from
    `learning_rate` to 0 along a half cosine over the whole run (Loshchilov & Hutter 2017, without
    restarts), so the last epochs take small steps instead of hovering at Adam's noise floor."""
    adam_beta1: float = 0.9
    """Adam's first-moment decay (Keras's default 0.9). Adversarial training often uses 0.5 or
    less (Radford et al. 2016), since momentum makes the players overshoot each other (Gidel et
    al. 2019). On the Fashion recipe 0.5 tied on samples (18.6x against 18.1x the floor;
    checkpoints/TUNING.md, thirteenth pass); with one decoder detail convolution, 16.2x
    (fourteenth pass)."""
    ema_momentum: float = 0.0
    """Keep an exponential moving average of the weights (Polyak averaging, as GAN training often
    does: Yazici et al. 2019) with this momentum, and finish the run on the averaged weights.
    0.998 averages over about the last 500 steps. The run itself trains the raw weights, so
    the live previews show those; 0 = off."""
    batch_size: int = 128
    epochs: int = 5
    seed: int = 0
    bf16: bool = False
    """Mixed precision: layers compute in bfloat16 (Keras "mixed_bfloat16" policy, set per layer),
    weights, latent statistics and losses stay float32. Pays only on CPUs with bf16 hardware."""
    # ---- The sharp-conditional recipe (issue 10). Defaults reproduce the older models exactly,
    # so a config.json written before these fields existed loads as it always did.
    encoder_conditional: bool = False
    """Conditional models: the encoder also sees the classifier's (stop-gradient) softmax,
    q(z | x, c) as in Kingma et al. 2014 (M2), so the style latent need not carry the class."""
    consistency_weight: float = 0.0
    """Conditional models: weight of the class-consistency loss. Shuffled style codes (or N(0, I)
    draws: decoded_styles) are decoded with random one-hots and the model's own classifier
    (frozen for this term) must read the requested class; its cross-entropy trains the decoder
    only. 0 = off."""
    decoded_styles: str = "shuffled"
    """The styles of the images the training terms decode with random classes (the consistency,
    realism and feature terms): "shuffled", the batch's own encoded styles in another order, or
    "prior", fresh N(0, I) draws, the very styles N(0, I) sampling later decodes. Encoded
    styles only cover where the encoder puts training images; with "prior" the decoder is also
    trained on the gaps between them that N(0, I) samples land in (Larsen et al. 2016 show
    their critic decoded prior draws). On the Fashion recipe with Adam beta1 0.5 it took the
    samples from 18.6x to 14.0x the floor, and with a decoder detail convolution too from 16.2x
    to 8.4x (checkpoints/TUNING.md, fourteenth pass); that recipe at 15 epochs, 9.0x, is the
    shipped one (fifteenth pass)."""
    conv_width: int = 32
    """Conv models: channels of the first conv layer (the second has twice as many)."""
    decoder_detail_convs: int = 0
    """Conv models: extra 3x3 convolutions (conv_width channels, stride 1) at full 28x28
    resolution, between the upsampling to 28x28 and the output layer, which otherwise follow
    each other directly: room for detail finer than the 14x14 features carry (a sandal's
    straps). One on the Fashion recipe tied on samples (17.3x against 18.1x the floor) and
    raised agreement to 96.7% (checkpoints/TUNING.md, thirteenth pass); with Adam beta1 0.5,
    16.2x, and with fresh N(0, I) styles decoded too, 8.4x (fourteenth pass), for epochs 1.28x
    as long."""
    style_adversary_weight: float = 0.0
    """Conditional models: weight of the style-adversary term. A small network learns to read the
    class from the encoded style mean; the encoder is trained to leave it guessing (its reading
    pushed towards uniform), so p(style | class) approaches p(style) and any style decodes as a
    realistic image of any class. 0 = off."""
    realism_weight: float = 0.0
    """Weight of the realism term (a VAE-GAN term, Larsen et al. 2016). A small image critic
    learns to tell training images from decoded shuffled style codes (with the requested class,
    for conditional models: a projection critic, Miyato & Koyama 2018); the decoder is trained to
    fool it, which draws sharp strokes where a Bernoulli mean would blur them. 0 = off."""
    critic_width: int = 16
    """With the realism term on: channels of the image critic's first convolution (the second
    has twice as many). The Fashion recipe's 64 took its samples from 38.6x to 29.0x the floor,
    for epochs 1.3x as long as at 16 (bench/critic_width.py; checkpoints/TUNING.md, ninth pass)."""
    critic_depth: int = 2
    """With the realism term on: stride-2 convolutions in the image critic, each with twice the
    channels of the one before. 2 (28 -> 14 -> 7) judges 7x7-pixel patches, weighed linearly;
    3 adds a 4x4 layer of 4x the width. On the Fashion recipe 3 made the samples worse (33.7x
    the floor against 18.1x; shirts under the 80% bar) and epochs 1.2x as long
    (checkpoints/TUNING.md, twelfth pass), so the recipes keep 2."""
    critic_gradient_penalty: float = 0.0
    """With the realism term on: gamma of the R1 penalty, gamma / 2 times the squared gradient
    of the critic's logit with respect to each real image, added to the critic's loss
    (Mescheder et al. 2018), meant to damp the critic-decoder game's orbit around its
    equilibrium (which averaging the weights suggests the decoder circles); it costs a
    second-order pass through the critic on the real batch. On the Fashion recipe gamma 0.01
    made the critic stronger and the samples worse (27.0x the floor against 18.1x;
    checkpoints/TUNING.md, thirteenth pass). 0 = off."""
    realism_on_reconstructions: bool = False
    """With the realism term on: the critic also judges the batch's reconstructions (as Larsen et
    al. 2016 do), each kind of decoded image at half the weight. It sharpened Fashion-MNIST
    samples (N(0, I) styles: FD 49.6x -> 38.6x the floor); on MNIST it sharpened reconstructions
    but made samples from the shared mixture worse (7.3x -> 9.5x), and pays only together with
    class-matched styles (3.9x): see checkpoints/TUNING.md."""
    perceptual_weight: float = 0.0
    """Conditional models: weight of a feature-matching term (a "perceptual" loss, Hou et al.
    2017): the model's own classifier (frozen for this term) looks at each reconstruction and at
    its input, and the decoder is trained to make its hidden activations alike, each layer's
    squared difference relative to that layer's mean activation energy on the batch's inputs.
    It asks for the detail a
    classifier notices, which a pixel likelihood averages away. 0 = off."""
    moment_matching_weight: float = 0.0
    """Conditional models: weight of a feature-statistics term (feature matching, Salimans et
    al. 2016, with the model's own classifier, frozen for this term). Each batch's decoded
    shuffled styles (the critic's fakes) and its real images should give the classifier's
    hidden units the same mean and spread; the decoder is trained to close the gap. It asks
    the samples as a whole to look like the data to a classifier, which the per-image terms
    cannot. 0 = off."""
    class_feature_matching_weight: float = 0.0
    """Conditional models: weight of a per-class feature-mean term. For each class, the decoded
    styles of that class (decoded_styles) should give the model's own classifier (frozen for
    this term) the same mean last-hidden activation as the real images of that class; the
    decoder is trained to close the gap. The judge's Frechet distance of the Fashion samples is
    mostly such per-class offsets (`checkpoints/fd_breakdown.py`: moving each class's sample
    features to its real mean takes 18.1x to 6.4x the floor), which a whole-batch statistic
    cannot see. Both class means are moving averages over recent batches (a class has about 13
    images in a batch of 128), and the gradient follows the averaged gap, so the batch's
    sampling noise does not shrink the samples' spread. On the Fashion recipe (weight 200) it
    closed its own gap but the samples got worse (20.2x), and shirts fell under 80%: it fixed
    the encoded styles it is shown, not the N(0, I) styles samples use (checkpoints/TUNING.md,
    fourteenth pass). 0 = off."""
    style_prior_components: int = 0
    """Components of the Gaussian mixture fitted to the encoded training styles after training
    (an ex-post prior to sample styles from); 0 = sample styles from N(0, I) only."""
    class_matched_styles: bool = False
    """Conditional models: after training, also fit one full-covariance Gaussian per class to the
    encoded training styles (class = the model's own reading) and sample from them by default.
    A seed draws one noise vector and writes it into every class's own spread (mu_c + L_c eps),
    so a seed is still one hand for all digits, at the same place in each digit's range of
    styles, and no digit is drawn in a style only another digit has (checkpoints/TUNING.md)."""
    class_style_anchors: int = 0
    """With class-matched styles: keep this many encoded training styles per class and sample
    each class from a kernel density around them instead of its one Gaussian (0 = the Gaussian).
    A seed's noise is carried to one kept style of each class by the optimal transport map from
    N(0, I) (every kept style equally likely), then blurred by `class_style_bandwidth`, so a seed
    still means the same place in every class's spread (checkpoints/TUNING.md, sixth pass)."""
    class_style_bandwidth: float = 0.5
    """The kernel's width, as a fraction of each class's spread. 0.5 puts samples as far from
    their nearest training style as held-out test images are (measured on MNIST)."""
    int8_dense: bool = False
    """Inference only: the Dense layers hold int8 weights with per-channel scales (Keras's int8
    quantization), a quarter of the float32 file size, for the shipped checkpoints. Set by
    `python -m vae_core int8 DIR` on a trained checkpoint, never trained with."""
    sample_temperature: float = 1.0
    """The default spread of sampled styles: N(0, I), or each mixture component, is scaled by
    it. Below 1 trades a little variety within a component for samples that obey the class
    slots more often (the "temperature" of Kingma & Dhariwal 2018, who sample Glow at 0.7)."""

    def __post_init__(self):
        # Normalise list-like hidden sizes (from JSON or a form) to a tuple before validating.
        if isinstance(self.hidden, list):
            object.__setattr__(self, "hidden", tuple(self.hidden))
        for problem in self._problems():
            raise ConfigError(problem)

    def _problems(self):
        if self.dataset not in DATASETS:
            yield f"Unknown dataset {self.dataset!r}: choose one of {', '.join(DATASETS)}."
        if self.arch not in ARCHITECTURES:
            yield f"Unknown architecture {self.arch!r}: choose one of {', '.join(ARCHITECTURES)}."
        if self.recon_loss not in RECON_LOSSES:
            yield (f"Unknown reconstruction loss {self.recon_loss!r}: "
                   f"choose one of {', '.join(RECON_LOSSES)}.")
        if self.decoded_styles not in DECODED_STYLES:
            yield (f"Unknown decoded styles {self.decoded_styles!r}: "
                   f"choose one of {', '.join(DECODED_STYLES)}.")
        if self.lr_schedule not in LR_SCHEDULES:
            yield (f"Unknown learning-rate schedule {self.lr_schedule!r}: "
                   f"choose one of {', '.join(LR_SCHEDULES)}.")
        if not isinstance(self.conditional, bool):
            yield f"'conditional' must be true or false, not {self.conditional!r}."
        if not isinstance(self.int8_dense, bool):
            yield f"'int8_dense' must be true or false, not {self.int8_dense!r}."
        if not isinstance(self.bf16, bool):
            yield f"'bf16' must be true or false, not {self.bf16!r}."
        yield from _int_in("latent_dim", self.latent_dim, 1, 512,
                           "the latent space needs at least one dimension")
        yield from _int_in("kl_warmup_epochs", self.kl_warmup_epochs, 0, 10_000)
        yield from _int_in("batch_size", self.batch_size, 1, 60_000,
                           "a batch must hold at least one image and at most the training set")
        yield from _int_in("epochs", self.epochs, 1, 10_000)
        yield from _int_in("seed", self.seed, 0, 2**31 - 1)
        if not isinstance(self.encoder_conditional, bool):
            yield f"'encoder_conditional' must be true or false, not {self.encoder_conditional!r}."
        elif self.encoder_conditional and not self.conditional:
            yield ("encoder_conditional needs a conditional model: the encoder reads the "
                   "classifier's softmax, and only conditional models have a classifier.")
        yield from self._class_term_weight(
            "consistency_weight", "the class-consistency loss",
            "the loss asks the model's classifier to read the requested class in decoded samples")
        yield from self._class_term_weight(
            "style_adversary_weight", "the style adversary",
            "it keeps the class out of the style latent, and only conditional models have class "
            "slots")
        yield from self._loss_weight("realism_weight", "the image critic")
        yield from self._loss_weight("critic_gradient_penalty", "the critic's R1 penalty")
        if (_is_real(self.critic_gradient_penalty) and self.critic_gradient_penalty > 0
                and _is_real(self.realism_weight) and self.realism_weight == 0):
            yield ("critic_gradient_penalty needs the realism term on (realism_weight > 0): "
                   "it regularizes the image critic.")
        yield from self._class_term_weight(
            "perceptual_weight", "the feature-matching term",
            "it compares the model's own classifier's activations, and only conditional models "
            "have a classifier")
        yield from self._class_term_weight(
            "moment_matching_weight", "the feature-statistics term",
            "it compares the model's own classifier's activations, and only conditional models "
            "have a classifier")
        yield from self._class_term_weight(
            "class_feature_matching_weight", "the per-class feature-mean term",
            "it compares the model's own classifier's activations per class, and only "
            "conditional models have a classifier")
        if not isinstance(self.realism_on_reconstructions, bool):
            yield ("'realism_on_reconstructions' must be true or false, "
                   f"not {self.realism_on_reconstructions!r}.")
        elif (self.realism_on_reconstructions and _is_real(self.realism_weight)
              and self.realism_weight == 0):
            yield ("realism_on_reconstructions needs the realism term on (realism_weight > 0): "
                   "it shows the image critic the reconstructions too.")
        if (not _is_real(self.sample_temperature) or not math.isfinite(self.sample_temperature)
                or not 0 < self.sample_temperature <= 2):
            yield (f"sample_temperature must be a number in (0, 2] (1 = the fitted spread), "
                   f"not {self.sample_temperature!r}.")
        yield from _int_in("conv_width", self.conv_width, 1, 512)
        yield from _int_in("critic_width", self.critic_width, 1, 512)
        yield from _int_in("decoder_detail_convs", self.decoder_detail_convs, 0, 4)
        if (_is_int(self.decoder_detail_convs) and self.decoder_detail_convs
                and self.arch != "conv"):
            yield ("decoder_detail_convs needs the conv architecture: the MLP decoder has no "
                   "feature maps to refine.")
        yield from _int_in("critic_depth", self.critic_depth, 1, 4)
        yield from _int_in("style_prior_components", self.style_prior_components, 0, 1000,
                           "0 switches the fitted mixture prior off")
        if not isinstance(self.class_matched_styles, bool):
            yield f"'class_matched_styles' must be true or false, not {self.class_matched_styles!r}."
        elif self.class_matched_styles and not self.conditional:
            yield ("class_matched_styles needs a conditional model: it fits one style "
                   "distribution per class, and only conditional models have class slots.")
        yield from _int_in("class_style_anchors", self.class_style_anchors, 0, 10_000,
                           "0 samples each class from its one fitted Gaussian")
        if (_is_int(self.class_style_anchors) and self.class_style_anchors
                and self.class_matched_styles is not True):
            yield ("class_style_anchors needs class_matched_styles on: the kept styles are "
                   "placed in each class's fitted spread.")
        if (not _is_real(self.class_style_bandwidth)
                or not math.isfinite(self.class_style_bandwidth)
                or not 0 < self.class_style_bandwidth <= 2):
            yield (f"class_style_bandwidth must be a number in (0, 2] (a fraction of each "
                   f"class's spread), not {self.class_style_bandwidth!r}.")
        if not _is_real(self.beta) or not math.isfinite(self.beta) or self.beta < 0:
            yield f"beta must be a finite number >= 0 (0 switches KL off), not {self.beta!r}."
        if (not _is_real(self.learning_rate) or not math.isfinite(self.learning_rate)
                or not 0 < self.learning_rate <= 1):
            yield f"learning_rate must be a number in (0, 1], not {self.learning_rate!r}."
        if (not _is_real(self.adam_beta1) or not math.isfinite(self.adam_beta1)
                or not 0 <= self.adam_beta1 < 1):
            yield f"adam_beta1 must be a number in [0, 1), not {self.adam_beta1!r}."
        if (not _is_real(self.ema_momentum) or not math.isfinite(self.ema_momentum)
                or not 0 <= self.ema_momentum < 1):
            yield (f"ema_momentum must be a number in [0, 1) (0 switches weight averaging off), "
                   f"not {self.ema_momentum!r}.")
        if (not isinstance(self.hidden, tuple) or not self.hidden
                or not all(_is_int(h) and 1 <= h <= 8192 for h in self.hidden)):
            yield (f"hidden must be one or more layer sizes between 1 and 8192 "
                   f"(e.g. 512 or 512,256), not {self.hidden!r}.")

    def _loss_weight(self, name, term):
        """A loss weight: a finite number >= 0, where 0 switches its term off."""
        value = getattr(self, name)
        if not _is_real(value) or not math.isfinite(value) or value < 0:
            yield f"{name} must be a finite number >= 0 (0 switches {term} off), not {value!r}."

    def _class_term_weight(self, name, term, why):
        """A loss weight whose term only exists in conditional models."""
        problems = list(self._loss_weight(name, term))
        yield from problems
        if not problems and getattr(self, name) > 0 and not self.conditional:
            yield f"{name} needs a conditional model: {why}."

    @property
    def decoder_input_dim(self) -> int:
        return self.latent_dim + (NUM_CLASSES if self.conditional else 0)

    def replace(self, **changes) -> "VAEConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["hidden"] = list(self.hidden)
        return d

    @classmethod
    def from_dict(cls, data: dict) -> "VAEConfig":
        if not isinstance(data, dict):
            raise ConfigError(f"A config must be a JSON object, not {type(data).__name__}.")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
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


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_real(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _int_in(name, value, lo, hi, why=""):
    if not _is_int(value) or not lo <= value <= hi:
        reason = f" ({why})" if why else ""
        yield f"{name} must be a whole number from {lo} to {hi}{reason}, not {value!r}."


def parse_hidden(text: str) -> tuple[int, ...]:
    """'512,256' -> (512, 256), with a ConfigError a person can read for anything else."""
    try:
        return tuple(int(part) for part in str(text).replace(" ", "").split(",") if part)
    except ValueError:
        raise ConfigError(f"hidden must be comma-separated layer sizes like 512,256, "
                          f"not {text!r}.") from None


# Named recipes the Train page can offer (and `make_all.sh` ships): see checkpoints/TUNING.md for
# how they were chosen. The class-conditioned encoder (and, for MNIST, the style adversary) keep
# the class out of the style latent, the consistency loss makes the decoder obey the class slots,
# the realism critic (which also judges reconstructions) makes it draw sharp strokes, and MNIST
# samples each digit's style from that digit's own fitted range (class-matched styles), so a 16-D
# style stays both faithful and sharp. Fashion's terms decode fresh N(0, I) styles, the ones its
# samples are drawn with, and a full-resolution decoder convolution draws the sandals' straps.
# They are exactly what checkpoints/make_all.sh ships.
PRESETS = {
    "sharp_conditional_mnist": VAEConfig(
        dataset="mnist", arch="conv", conv_width=32, latent_dim=16, conditional=True, beta=1.0,
        hidden=(256,), epochs=10, encoder_conditional=True, consistency_weight=1.0,
        style_adversary_weight=1.0, realism_weight=3.0, realism_on_reconstructions=True,
        style_prior_components=50, class_matched_styles=True, class_style_anchors=3000),
    "sharp_conditional_fashion": VAEConfig(
        dataset="fashion_mnist", arch="conv", conv_width=32, latent_dim=16, conditional=True,
        beta=1.0, hidden=(256,), epochs=15, encoder_conditional=True, consistency_weight=4.0,
        decoded_styles="prior", realism_weight=3.0, critic_width=64,
        realism_on_reconstructions=True, decoder_detail_convs=1, adam_beta1=0.5,
        ema_momentum=AVERAGING_MOMENTUM),
}
