"""The VAE: encoder q(z|x), reparameterised sampling, decoder p(x|z), optional digit classifier.

Loss per image = reconstruction (BCE, MSE or a calibrated Gaussian NLL, summed over the 784
pixels) + beta * KL(q(z|x) || N(0, I)) (+ classification cross-entropy when conditional), each
averaged over the batch and reported by its own `keras.metrics.Mean` tracker so `fit`,
callbacks and progress bars show every term.
"""

from __future__ import annotations

import threading

import keras
import numpy as np
from keras import layers, ops

from .config import IMAGE_SHAPE, NUM_CLASSES, VAEConfig
from .style_prior import GaussianMixture

SAMPLERS = ("class", "mixture", "normal")

_PIXELS = int(np.prod(IMAGE_SHAPE))
_INFERENCE_BATCH = 2048
# The calibrated Gaussian's smallest pixel standard deviation: one grey level (the data are
# 8-bit), so a perfect fit cannot drive the likelihood to infinity.
MIN_PIXEL_STD = 1.0 / 255.0
# How fast the stored pixel variance follows the training batches' optimum (per step).
PIXEL_VARIANCE_MOMENTUM = 0.99
# How fast the per-class feature averages follow the batches (per step): about 100 steps, some
# 1,300 images per class, so each average is steady yet keeps up with the classifier's training.
CLASS_FEATURE_MOMENTUM = 0.99
STORED_STATISTICS = ("class_feature_sums", "class_feature_norms", "pixel_variance")
"""compute_losses outputs that train_step keeps in non-trainable weights after the update."""


@keras.saving.register_keras_serializable(package="vae_core")
class Sampling(layers.Layer):
    """The reparameterisation trick: z = mean + std * eps, eps ~ N(0, I), so gradients reach mean/std."""

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs):
        z_mean, z_log_var = inputs
        eps = keras.random.normal(ops.shape(z_mean), seed=self.seed_generator)
        return z_mean + ops.exp(0.5 * z_log_var) * eps

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


def compute_policy(config: VAEConfig):
    """The dtype policy of the hidden layers: "mixed_bfloat16" (bf16 maths, float32 weights) when
    config.bf16, else None (float32). Set per layer, never process-wide: one app process trains
    and serves several visitors' models at once. Heads (latent statistics, class
    probabilities, pixel probabilities) stay float32, and the losses are computed in float32."""
    return keras.DTypePolicy("mixed_bfloat16") if config.bf16 else None


def _conv_stack(x, width=32, dtype=None):
    """Two stride-2 convolutions: 28x28x1 -> 14x14xW -> 7x7x2W (W = conv_width, 32 by default)."""
    x = layers.Conv2D(width, 3, strides=2, padding="same", activation="relu", dtype=dtype)(x)
    return layers.Conv2D(2 * width, 3, strides=2, padding="same", activation="relu",
                         dtype=dtype)(x)


def _dense_stack(x, sizes, dtype=None):
    for size in sizes:
        x = layers.Dense(size, activation="relu", dtype=dtype)(x)
    return x


def build_encoder(config: VAEConfig) -> keras.Model:
    """q(z | x), or q(z | x, c) when `encoder_conditional`: then the inputs are [image, class
    probabilities] and the probabilities join the image features before the dense layers."""
    policy = compute_policy(config)
    x_in = keras.Input(IMAGE_SHAPE, name="image")
    x = _conv_stack(x_in, config.conv_width, policy) if config.arch == "conv" else x_in
    x = layers.Flatten(dtype=policy)(x)
    inputs = x_in
    if config.encoder_conditional:
        c_in = keras.Input((NUM_CLASSES,), name="class_probs")
        x = layers.Concatenate(dtype=policy)([x, c_in])
        inputs = [x_in, c_in]
    x = _dense_stack(x, config.hidden, policy)
    z_mean = layers.Dense(config.latent_dim, name="z_mean", dtype="float32")(x)
    z_log_var = layers.Dense(config.latent_dim, name="z_log_var", dtype="float32")(x)
    return keras.Model(inputs, [z_mean, z_log_var], name="encoder")


def build_decoder(config: VAEConfig) -> keras.Model:
    """Maps z (style, plus 10 class slots when conditional) to pixel probabilities.

    The last layer is named "logits" and the sigmoid is a separate layer, so training can compute
    BCE from logits (numerically stable) while `decoder(z)` still returns probabilities.
    """
    policy = compute_policy(config)
    z_in = keras.Input((config.decoder_input_dim,), name="z")
    x = _dense_stack(z_in, reversed(config.hidden), policy)
    if config.arch == "conv":
        w = config.conv_width
        x = layers.Dense(7 * 7 * 2 * w, activation="relu", dtype=policy)(x)
        x = layers.Reshape((7, 7, 2 * w), dtype=policy)(x)
        x = layers.Conv2DTranspose(2 * w, 3, strides=2, padding="same", activation="relu",
                                   dtype=policy)(x)
        x = layers.Conv2DTranspose(w, 3, strides=2, padding="same", activation="relu",
                                   dtype=policy)(x)
        for _ in range(config.decoder_detail_convs):
            x = layers.Conv2D(w, 3, padding="same", activation="relu", dtype=policy)(x)
        logits = layers.Conv2DTranspose(1, 3, padding="same", name="logits", dtype=policy)(x)
    else:
        x = layers.Dense(_PIXELS, name="logits", dtype=policy)(x)
        logits = layers.Reshape(IMAGE_SHAPE, dtype=policy)(x)
    probs = layers.Activation("sigmoid", name="pixel_probs", dtype="float32")(logits)
    return keras.Model(z_in, probs, name="decoder")


def build_classifier(config: VAEConfig) -> keras.Model:
    policy = compute_policy(config)
    x_in = keras.Input(IMAGE_SHAPE, name="image")
    x = _conv_stack(x_in, config.conv_width, policy) if config.arch == "conv" else x_in
    x = _dense_stack(layers.Flatten(dtype=policy)(x), config.hidden, policy)
    probs = layers.Dense(NUM_CLASSES, activation="softmax", name="class_probs",
                         dtype="float32")(x)
    return keras.Model(x_in, probs, name="classifier")


def build_style_adversary(config: VAEConfig) -> keras.Model:
    """Reads the class from a style mean: the critic that keeps the class out of the style."""
    z_in = keras.Input((config.latent_dim,), name="style_mean")
    x = _dense_stack(z_in, (256, 256))
    probs = layers.Dense(NUM_CLASSES, activation="softmax", name="class_probs")(x)
    return keras.Model(z_in, probs, name="style_adversary")


def build_image_critic(config: VAEConfig) -> keras.Model:
    """A real-or-decoded logit per image: the realism term's critic. critic_depth stride-2
    convolutions (critic_width channels, doubling at each; at the defaults, two of 16 and 32, a
    fraction of the decoder's cost per step); for conditional models a projection of the class
    one-hot onto the features (Miyato & Koyama 2018), so it asks "is this a real 7?", not only
    "is this a real digit?"."""
    w, policy = config.critic_width, compute_policy(config)
    x_in = keras.Input(IMAGE_SHAPE, name="image")
    x = x_in
    for level in range(config.critic_depth):
        x = layers.Conv2D(w * 2 ** level, 3, strides=2, padding="same", dtype=policy)(x)
        x = layers.LeakyReLU(0.2, dtype=policy)(x)
    features = layers.Flatten(dtype="float32")(x)  # the logit and its projection in float32
    logit = layers.Dense(1, name="realism_logit")(features)
    if not config.conditional:
        return keras.Model(x_in, logit, name="image_critic")
    c_in = keras.Input((NUM_CLASSES,), name="class_one_hot")
    class_embedding = layers.Dense(features.shape[-1], use_bias=False)(c_in)
    logit = layers.Add()([logit, layers.Dot(axes=1)([features, class_embedding])])
    return keras.Model([x_in, c_in], logit, name="image_critic")


def kl_divergence(z_mean, z_log_var):
    """KL(N(mean, exp(log_var)) || N(0, I)) per latent dimension, in nats."""
    return -0.5 * (1.0 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var))


def reconstruction_loss(x, logits, kind: str, pixel_variance=None):
    """Per-image reconstruction loss summed over pixels: Bernoulli NLL on grey levels, SSE, or
    the Gaussian NLL (in nats, as a density on [0, 1]) with one shared pixel variance."""
    x = ops.reshape(x, (-1, _PIXELS))
    logits = ops.reshape(logits, (-1, _PIXELS))
    if kind == "bce":
        # Stable BCE from logits: softplus(l) - x*l  ==  -x log s(l) - (1-x) log(1-s(l)).
        per_pixel = ops.softplus(logits) - x * logits
    elif kind == "gaussian":
        squared = ops.sum(ops.square(x - ops.sigmoid(logits)), axis=1)
        return squared / (2.0 * pixel_variance) + 0.5 * _PIXELS * ops.log(
            2.0 * np.pi * pixel_variance)
    else:
        per_pixel = ops.square(x - ops.sigmoid(logits))
    return ops.sum(per_pixel, axis=1)


def optimal_pixel_variance(x, logits):
    """The shared pixel variance that maximises the Gaussian likelihood of a batch: its mean
    squared error (stop-gradient; at the optimum its own gradient is zero anyway), floored at
    one grey level squared."""
    squared = ops.square(ops.reshape(x, (-1, _PIXELS)) - ops.sigmoid(
        ops.reshape(logits, (-1, _PIXELS))))
    return ops.maximum(ops.stop_gradient(ops.mean(squared)), MIN_PIXEL_STD ** 2)


@keras.saving.register_keras_serializable(package="vae_core")
class VAE(keras.Model):
    """A VAE, optionally digit-conditioned.

    Conditional design choice: during training the decoder receives the *classifier's* softmax
    output (as in the seed design), not the true label, concatenated to z. The classifier is
    trained only by cross-entropy against the label: its output enters the decoder through a
    stop-gradient, so reconstruction pressure cannot turn the 10 class slots into extra style
    channels. At generation time the slots are set to one-hot(d), which the decoder has learnt to
    read because a trained classifier's outputs on training digits are nearly one-hot.
    """

    def __init__(self, config: VAEConfig | dict, **kwargs):
        super().__init__(**kwargs)
        if isinstance(config, dict):
            config = VAEConfig.from_dict(config)
        self.config = config
        self.encoder = build_encoder(config)
        self.decoder = build_decoder(config)
        self.classifier = build_classifier(config) if config.conditional else None
        self.style_adversary = (build_style_adversary(config)
                                if config.style_adversary_weight > 0 else None)
        self.image_critic = build_image_critic(config) if config.realism_weight > 0 else None
        self._classifier_features = None
        if (config.perceptual_weight > 0 or config.moment_matching_weight > 0
                or config.class_feature_matching_weight > 0):
            # The classifier's hidden activations (conv and dense), for the feature terms.
            hidden = [layer.output for layer in self.classifier.layers
                      if isinstance(layer, (layers.Conv2D, layers.Dense))
                      and layer.name != "class_probs"]
            self._classifier_features = keras.Model(self.classifier.inputs, hidden)
        if config.int8_dense:
            self._quantize_dense()
        self.sampling = Sampling(seed=config.seed, name="sampling")
        self.kl_weight = self.add_weight(
            name="kl_weight", shape=(), trainable=False,
            initializer=keras.initializers.Constant(config.beta))
        if config.recon_loss == "gaussian":
            # The calibrated decoder's shared pixel variance: training uses each batch's optimum
            # and this weight follows it (a moving average), so evaluation and the ELBO use one
            # fixed variance, saved in model.keras.
            self.pixel_log_variance = self.add_weight(
                name="pixel_log_variance", shape=(), trainable=False, initializer="zeros")
        if config.style_prior_components:
            # The ex-post mixture prior lives in non-trainable weights, so it is saved inside
            # model.keras and survives a safe_mode load. All-zero weights = not fitted yet.
            k, d = config.style_prior_components, config.latent_dim
            self.prior_weights = self.add_weight(name="prior_weights", shape=(k,),
                                                 trainable=False, initializer="zeros")
            self.prior_means = self.add_weight(name="prior_means", shape=(k, d),
                                               trainable=False, initializer="zeros")
            self.prior_chols = self.add_weight(name="prior_chols", shape=(k, d, d),
                                               trainable=False, initializer="zeros")
        if config.class_matched_styles:
            # One Gaussian per class (means and Cholesky factors), saved the same way; all-zero
            # factors = not fitted yet.
            d = config.latent_dim
            self.class_style_means = self.add_weight(
                name="class_style_means", shape=(NUM_CLASSES, d), trainable=False,
                initializer="zeros")
            self.class_style_chols = self.add_weight(
                name="class_style_chols", shape=(NUM_CLASSES, d, d), trainable=False,
                initializer="zeros")
            if config.class_style_anchors:
                # The kept styles (whitened per class) and their transport potentials.
                m = config.class_style_anchors
                self.class_style_anchors = self.add_weight(
                    name="class_style_anchors", shape=(NUM_CLASSES, m, d), trainable=False,
                    initializer="zeros")
                self.class_style_potentials = self.add_weight(
                    name="class_style_potentials", shape=(NUM_CLASSES, m), trainable=False,
                    initializer="zeros")
        if config.class_feature_matching_weight > 0:
            # Moving averages of each class's mean last-hidden activation, real [0] and decoded
            # [1], and the weight each average has gathered (bias correction from a zero start);
            # non-trainable weights, so a resumed run carries them on.
            units = int(np.prod(self._classifier_features.outputs[-1].shape[1:]))
            self.class_feature_sums = self.add_weight(
                name="class_feature_sums", shape=(2, NUM_CLASSES, units), trainable=False,
                initializer="zeros")
            self.class_feature_norms = self.add_weight(
                name="class_feature_norms", shape=(2, NUM_CLASSES), trainable=False,
                initializer="zeros")
        if self._needs_random_class_decodes:
            self.consistency_seed = keras.random.SeedGenerator(config.seed + 1)
        self._decoder_logits = keras.Model(
            self.decoder.inputs, self.decoder.get_layer("logits").output)
        names = ["loss", "reconstruction_loss", "kl_loss"]
        if config.conditional:
            names += ["classification_loss", "accuracy"]
        if config.consistency_weight > 0:
            names += ["consistency_loss"]
        if config.style_adversary_weight > 0:
            names += ["adversary_loss", "adversary_accuracy"]
        if config.realism_weight > 0:
            names += ["critic_loss", "realism_loss"]
        if config.critic_gradient_penalty > 0:
            names += ["critic_gradient_penalty"]
        if config.perceptual_weight > 0:
            names += ["perceptual_loss"]
        if config.moment_matching_weight > 0:
            names += ["moment_matching_loss"]
        if config.class_feature_matching_weight > 0:
            names += ["class_feature_matching_loss"]
        self.trackers = {n: keras.metrics.Mean(name=n) for n in names}
        self.history_log = {}  # per-epoch metrics; filled by `train` or `load_checkpoint`
        self.card = {}  # the checkpoint's card, when loaded from one
        self.training_snapshots = None  # per-epoch history (vae_core.history), when recorded
        self._inference_lock = threading.Lock()
        self._compiled = {}
        self.built = True

    def _quantize_dense(self):
        # The image critic is not quantized: it only serves training, which int8 models refuse.
        for network in (self.encoder, self.decoder, self.classifier, self.style_adversary):
            if network is not None:
                network.quantize("int8")

    def with_int8_dense(self) -> "VAE":
        """An inference-only copy whose Dense layers hold int8 weights (per-channel scales): a
        quarter of the file size, for shipping. Quality figures must be measured on the copy."""
        twin = VAE(self.config, name=self.name)
        twin.set_weights(self.get_weights())
        twin._quantize_dense()
        twin.config = self.config.replace(int8_dense=True)
        twin.history_log, twin.card = self.history_log, self.card
        twin.training_snapshots = self.training_snapshots
        return twin

    @property
    def _needs_random_class_decodes(self) -> bool:
        c = self.config
        return (c.consistency_weight > 0 or c.realism_weight > 0 or c.moment_matching_weight > 0
                or c.class_feature_matching_weight > 0)

    @property
    def epochs_trained(self) -> int:
        """Epochs actually run (fewer than config.epochs when a run was stopped early)."""
        return len(self.history_log.get("loss", []))

    # ---- Keras plumbing -------------------------------------------------------------------
    @property
    def metrics(self):
        return list(self.trackers.values())

    def get_config(self):
        return {"config": self.config.to_dict(), "name": self.name}

    @classmethod
    def from_config(cls, config):
        return cls(VAEConfig.from_dict(config["config"]), name=config.get("name"))

    def _encoder_inputs(self, x, class_probs):
        """The encoder's inputs: the image, plus the (stop-gradient) class reading for q(z|x,c)."""
        if self.config.encoder_conditional:
            return [ops.convert_to_tensor(x), ops.stop_gradient(class_probs)]
        return x

    def call(self, x, training=False):
        class_probs = (self.classifier(x, training=training) if self.classifier is not None
                       else None)
        z_mean, z_log_var = self.encoder(self._encoder_inputs(x, class_probs), training=training)
        z = self.sampling([z_mean, z_log_var])
        if self.classifier is not None:
            z = ops.concatenate([z, class_probs], axis=-1)
        return self.decoder(z, training=training)

    def compute_losses(self, x, y, training=False):
        """All loss terms for a batch, per image (shape (N,)), plus per-dim KL (N, latent).

        "loss" is the total reported; "main_loss" is the part whose gradient reaches every
        weight (each other term trains one network only: see train_step).
        """
        out = {}
        class_probs = None
        if self.classifier is not None:
            class_probs = self.classifier(x, training=training)
            out["classification_loss"] = keras.losses.sparse_categorical_crossentropy(
                y, class_probs)
            out["accuracy"] = ops.cast(
                ops.equal(ops.argmax(class_probs, axis=-1), ops.cast(y, "int64")), "float32")
            class_probs = ops.stop_gradient(class_probs)
        z_mean, z_log_var = self.encoder(self._encoder_inputs(x, class_probs), training=training)
        z = self.sampling([z_mean, z_log_var])
        codes = z if class_probs is None else ops.concatenate([z, class_probs], axis=-1)
        logits = ops.cast(self._decoder_logits(codes, training=training), "float32")  # bf16
        variance = None
        if self.config.recon_loss == "gaussian":
            variance = (optimal_pixel_variance(x, logits) if training
                        else ops.exp(self.pixel_log_variance))
            out["pixel_variance"] = variance
        out["reconstruction_loss"] = reconstruction_loss(x, logits, self.config.recon_loss,
                                                         variance)
        reconstructions = ops.reshape(ops.sigmoid(logits), (-1, *IMAGE_SHAPE))
        out["kl_per_dim"] = kl_divergence(z_mean, z_log_var)
        out["kl_loss"] = ops.sum(out["kl_per_dim"], axis=1)
        total = out["reconstruction_loss"] + self.kl_weight * out["kl_loss"]
        if self.classifier is not None:
            total = total + out["classification_loss"]
        if self.style_adversary is not None:
            # The adversary learns from a stop-gradient copy (its loss reaches no other weight);
            # "style_leak_loss", its cross-entropy to the uniform reading, trains the encoder only.
            adv_probs = self.style_adversary(ops.stop_gradient(z_mean), training=training)
            out["adversary_loss"] = keras.losses.sparse_categorical_crossentropy(y, adv_probs)
            out["adversary_accuracy"] = ops.cast(
                ops.equal(ops.argmax(adv_probs, axis=-1), ops.cast(y, "int64")), "float32")
            total = total + out["adversary_loss"]
            leak_probs = self.style_adversary(z_mean, training=training)
            out["style_leak_loss"] = -ops.mean(ops.log(ops.clip(leak_probs, 1e-7, 1.0)), axis=-1)
        if self._needs_random_class_decodes:
            images, labels = self._random_class_decodes(z, training)
        if self.image_critic is not None:
            # One critic pass over the decoded images serves both players (see train_step):
            # "critic_loss" (real vs decoded) trains the critic only, "realism_loss"
            # (non-saturating: -log D(decoded)) the decoder only.
            fakes, fake_labels = images, labels
            if self.config.realism_on_reconstructions:
                # The batch's reconstructions too, with their true classes (Larsen et al. 2016).
                fakes = ops.concatenate([images, reconstructions], axis=0)
                fake_labels = None if labels is None else ops.concatenate(
                    [ops.cast(labels, "int32"), ops.cast(y, "int32")], axis=0)
            real_logit, real_slope = self._critic_and_slope(x, y, training)
            fake_logit = self._critic(fakes, fake_labels, training)
            caught, fooled = ops.softplus(fake_logit), ops.softplus(-fake_logit)
            if self.config.realism_on_reconstructions:  # each kind of decoded image at half weight
                n = ops.shape(x)[0]
                caught, fooled = 0.5 * (caught[:n] + caught[n:]), 0.5 * (fooled[:n] + fooled[n:])
            out["critic_loss"] = ops.softplus(-real_logit) + caught
            out["realism_loss"] = fooled
            if real_slope is not None:
                out["critic_gradient_penalty"] = real_slope
        if self._classifier_features is not None:
            if self.config.perceptual_weight > 0:
                out["perceptual_loss"] = self._feature_mismatch(x, reconstructions, training)
            if self.config.moment_matching_weight > 0:
                out["moment_matching_loss"] = self._feature_statistics_gap(x, images, training)
            if self.config.class_feature_matching_weight > 0:
                (out["class_feature_matching_loss"], out["class_feature_sums"],
                 out["class_feature_norms"]) = self._class_feature_gap(x, y, images, labels,
                                                                       training)
        out["main_loss"] = total
        if self.config.consistency_weight > 0:
            out["consistency_loss"] = keras.losses.sparse_categorical_crossentropy(
                labels, self.classifier(images, training=training))
            total = total + self.config.consistency_weight * out["consistency_loss"]
        if self.style_adversary is not None:
            total = total + self.config.style_adversary_weight * out["style_leak_loss"]
        if self.image_critic is not None:
            total = total + out["critic_loss"] + self.config.realism_weight * out["realism_loss"]
            if self.config.critic_gradient_penalty > 0:
                gamma = self.config.critic_gradient_penalty
                total = total + 0.5 * gamma * out["critic_gradient_penalty"]
        if self.config.perceptual_weight > 0:
            total = total + self.config.perceptual_weight * out["perceptual_loss"]
        if self.config.moment_matching_weight > 0:
            total = total + self.config.moment_matching_weight * out["moment_matching_loss"]
        if self.config.class_feature_matching_weight > 0:
            total = (total + self.config.class_feature_matching_weight
                     * out["class_feature_matching_loss"])
        out["loss"] = total
        return out

    def _hidden_features(self, images, training):
        """The classifier's hidden activations, one (N, units) float32 matrix per layer."""
        features = self._classifier_features(ops.reshape(images, (-1, *IMAGE_SHAPE)),
                                             training=training)
        if not isinstance(features, (list, tuple)):  # a one-layer classifier (MLP)
            features = [features]
        return [ops.reshape(ops.cast(f, "float32"), (ops.shape(f)[0], -1)) for f in features]

    def _feature_statistics_gap(self, x, decoded, training):
        """The batch's decoded shuffled styles against its real images, in the classifier's
        hidden activations: each unit's mean and standard deviation over the batch, the squared
        differences summed per layer over the real images' mean activation energy, summed over
        layers. A scalar (the same for every image): it compares distributions, not pairs."""
        total = 0.0
        for r, f in zip(self._hidden_features(x, training),
                        self._hidden_features(decoded, training)):
            r = ops.stop_gradient(r)
            energy = ops.mean(ops.sum(ops.square(r), axis=1))
            gap = (ops.sum(ops.square(ops.mean(f, axis=0) - ops.mean(r, axis=0)))
                   + ops.sum(ops.square(_spread(f) - _spread(r))))
            total = total + gap / (energy + 1e-6)
        return total

    def _class_feature_gap(self, x, y, decoded, labels, training):
        """Per class, the decoded images' mean last-hidden classifier activation against the real
        images', each a moving average over recent batches (CLASS_FEATURE_MOMENTUM; a class
        missing from a batch keeps its average), the squared gap, averaged over classes, over the
        real batch's mean activation energy. Returns (term, new sums, new norms); train_step
        stores the new averages. The term's value is that gap, and its gradient reaches the
        decoder through this batch's decoded class means only, along the averaged gap: a squared
        gap of two noisy ~13-image means would also reward shrinking the samples' spread."""
        real = ops.stop_gradient(self._hidden_features(x, training)[-1])
        fake = self._hidden_features(decoded, training)[-1]
        energy = ops.mean(ops.sum(ops.square(real), axis=1))
        sums, norms, averages, batch_means, present = [], [], [], [], []
        for side, (features, classes) in enumerate(((real, y), (fake, labels))):
            one_hot = ops.one_hot(ops.cast(classes, "int32"), NUM_CLASSES)
            counts = ops.sum(one_hot, axis=0)
            batch_means.append(ops.matmul(ops.transpose(one_hot), features)
                               / ops.maximum(counts, 1)[:, None])
            present.append(ops.cast(counts > 0, "float32"))
            step = (1 - CLASS_FEATURE_MOMENTUM) * present[-1]
            sums.append(self.class_feature_sums[side] * (1 - step)[:, None]
                        + step[:, None] * ops.stop_gradient(batch_means[-1]))
            norms.append(self.class_feature_norms[side] * (1 - step) + step)
            averages.append(sums[-1] / ops.maximum(norms[-1], 1e-12)[:, None])
        seen = ops.cast(ops.logical_and(norms[0] > 0, norms[1] > 0), "float32")[:, None]
        gap = seen * (averages[1] - averages[0])  # a class not yet seen on both sides: no gap
        fake_means = batch_means[1]
        follow = present[1][:, None] * (fake_means - ops.stop_gradient(fake_means))  # value 0
        term = ops.mean(ops.sum(ops.square(gap) + 2 * gap * follow, axis=1)) / (energy + 1e-6)
        return term, ops.stack(sums), ops.stack(norms)

    def _feature_mismatch(self, x, reconstructions, training):
        """Per image: the classifier's hidden activations on the reconstruction against those on
        the input, each layer's squared difference over the batch's mean activation energy of
        that layer on the inputs, summed over layers (scale-free, so no layer dominates by its
        size; a batch mean, as one image's energy can be nearly zero)."""
        total = 0.0
        for r, f in zip(self._hidden_features(x, training),
                        self._hidden_features(reconstructions, training)):
            r = ops.stop_gradient(r)
            energy = ops.mean(ops.sum(ops.square(r), axis=1))
            total = total + ops.sum(ops.square(f - r), axis=1) / (energy + 1e-6)
        return total

    def _random_class_decodes(self, z, training):
        """The batch's style codes, shuffled (stop-gradient), or as many N(0, I) draws (config
        decoded_styles), decoded with random one-hots: images (N, 28, 28, 1) and the requested
        classes (N,), or None when unconditional."""
        if self.config.decoded_styles == "prior":
            codes = keras.random.normal(ops.shape(z), seed=self.consistency_seed)
        else:
            codes = ops.stop_gradient(keras.random.shuffle(z, seed=self.consistency_seed))
        labels = None
        if self.config.conditional:
            labels = keras.random.randint((ops.shape(z)[0],), 0, NUM_CLASSES,
                                          seed=self.consistency_seed)
            codes = ops.concatenate([codes, ops.one_hot(labels, NUM_CLASSES)], axis=-1)
        images = ops.reshape(ops.sigmoid(self._decoder_logits(codes, training=training)),
                             (-1, *IMAGE_SHAPE))
        return images, labels

    def _critic_and_slope(self, images, labels, training):
        """The critic's logit per real image and, with the R1 penalty on, the squared norm of
        its gradient with respect to the image (N,), else None. The inner tape's gradient is
        itself recorded by train_step's tape, so the penalty trains the critic."""
        if not self.config.critic_gradient_penalty > 0:
            return self._critic(images, labels, training), None
        import tensorflow as tf  # a nested GradientTape: the penalty is a gradient

        images = ops.cast(images, "float32")
        with tf.GradientTape() as tape:
            tape.watch(images)
            logit = self._critic(images, labels, training)
            total = ops.sum(logit)
        slope = tape.gradient(total, images)
        return logit, ops.sum(ops.square(ops.reshape(slope, (ops.shape(slope)[0], -1))), axis=1)

    def _critic(self, images, labels, training):
        """The image critic's logit per image (N,); conditional critics also see the class."""
        inputs = ops.reshape(ops.cast(images, "float32"), (-1, *IMAGE_SHAPE))
        if self.config.conditional:
            inputs = [inputs, ops.one_hot(ops.cast(labels, "int32"), NUM_CLASSES)]
        return ops.reshape(self.image_critic(inputs, training=training), (-1,))

    def _update_trackers(self, losses):
        for name, tracker in self.trackers.items():
            tracker.update_state(ops.mean(losses[name]))
        return {name: tracker.result() for name, tracker in self.trackers.items()}

    def train_step(self, data):
        import tensorflow as tf  # the TensorFlow backend's GradientTape

        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        # Terms that train one sub-network only, each with the others frozen for it:
        # the consistency loss trains the decoder (the classifier must not learn to read the
        # decoder's drawings; the encoder is untouched); the style-leak loss trains the encoder
        # (the adversary must not learn to be fooled); the critic's loss and the decoder's
        # realism loss share one critic pass, so each is routed to its own player.
        partial = []
        if self.config.consistency_weight > 0:
            partial.append(("consistency_loss", self.config.consistency_weight, self.decoder))
        if self.style_adversary is not None:
            partial.append(("style_leak_loss", self.config.style_adversary_weight, self.encoder))
        if self.image_critic is not None:
            partial.append(("critic_loss", 1.0, self.image_critic))
            partial.append(("realism_loss", self.config.realism_weight, self.decoder))
        if self.config.critic_gradient_penalty > 0:
            partial.append(("critic_gradient_penalty", 0.5 * self.config.critic_gradient_penalty,
                            self.image_critic))
        if self.config.perceptual_weight > 0:
            partial.append(("perceptual_loss", self.config.perceptual_weight, self.decoder))
        if self.config.moment_matching_weight > 0:
            partial.append(("moment_matching_loss", self.config.moment_matching_weight,
                            self.decoder))
        if self.config.class_feature_matching_weight > 0:
            partial.append(("class_feature_matching_loss",
                            self.config.class_feature_matching_weight, self.decoder))
        with tf.GradientTape(persistent=bool(partial)) as tape:
            losses = self.compute_losses(x, y, training=True)
            loss = ops.mean(losses["main_loss"])
            networks = {id(network): network for *_, network in partial}.values()
            # One backward pass per network, over the sum of its own terms.
            extras = [(network, sum(weight * ops.mean(losses[name])
                                    for name, weight, own in partial if own is network))
                      for network in networks]
        grads = tape.gradient(loss, self.trainable_weights)
        for network, extra in extras:
            targets = network.trainable_weights
            extra_grads = dict(zip(map(id, targets), tape.gradient(extra, targets)))
            grads = [_sum_gradients(g, extra_grads.get(id(w)))
                     for g, w in zip(grads, self.trainable_weights)]
        del tape
        # The update waits for the statistics this step stores: without that, a compiled step
        # could compute them from partly updated weights (measured on the class-feature sums:
        # 6 of 30 fresh conv models stored sums 1.5-14% off the pre-update features; 0 of 60
        # with it).
        stored = [losses[name] for name in STORED_STATISTICS if name in losses]
        with tf.control_dependencies(stored):
            self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
        if self.config.class_feature_matching_weight > 0:
            self.class_feature_sums.assign(losses["class_feature_sums"])
            self.class_feature_norms.assign(losses["class_feature_norms"])
        if self.config.recon_loss == "gaussian":
            m = PIXEL_VARIANCE_MOMENTUM
            self.pixel_log_variance.assign(
                m * self.pixel_log_variance + (1 - m) * ops.log(losses["pixel_variance"]))
        return self._update_trackers(losses)

    def test_step(self, data):
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        return self._update_trackers(self.compute_losses(x, y, training=False))

    # ---- Inference API (numpy in, numpy out; thread-safe) ---------------------------------
    def _fn(self, name, fn, width):
        """A traced-once tf.function per entry point: avoids Keras `predict` overhead per call."""
        if name not in self._compiled:
            import tensorflow as tf

            _quiet_retracing_warning(tf)
            spec = tf.TensorSpec((None, *width), tf.float32)
            self._compiled[name] = tf.function(fn, input_signature=[spec], reduce_retracing=True)
        return self._compiled[name]

    def _batched(self, name, fn, width, inputs):
        compiled = self._fn(name, fn, width)
        outputs = []
        with self._inference_lock:
            for start in range(0, max(len(inputs), 1), _INFERENCE_BATCH):
                out = compiled(inputs[start:start + _INFERENCE_BATCH])
                outputs.append([o.numpy() for o in out] if isinstance(out, (list, tuple))
                               else [out.numpy()])
        return [np.concatenate(parts) for parts in zip(*outputs)]

    def encode(self, images):
        """Posterior means and log-variances of images (N, 28, 28[, 1]) in [0, 1].

        A model whose encoder is class-conditioned reads each image's class with its own
        classifier first, so the result is still a function of the images alone.
        """
        x = _as_images(images)

        def fn(t):
            probs = self.classifier(t, training=False) if self.config.encoder_conditional else None
            return self.encoder(self._encoder_inputs(t, probs), training=False)

        mean, log_var = self._batched("encode", fn, IMAGE_SHAPE, x)
        return mean, log_var

    def decode(self, z):
        """Decoded pixel probabilities (N, 28, 28); conditional z = style dims + 10 class slots."""
        z = np.asarray(z, np.float32)
        if z.ndim == 1:
            z = z[None]
        width = self.config.decoder_input_dim
        if z.ndim != 2 or z.shape[1] != width:
            parts = (f"{self.config.latent_dim} style dims + {NUM_CLASSES} class slots"
                     if self.classifier is not None else f"{self.config.latent_dim} latent dims")
            raise ValueError(f"decode expects codes of shape (N, {width}) ({parts}), "
                             f"got shape {z.shape}.")
        (probs,) = self._batched(
            "decode", lambda t: self.decoder(t, training=False),
            (self.config.decoder_input_dim,), z)
        return probs[..., 0]

    def classify(self, images):
        """Class probabilities (N, 10) from the classifier head (conditional models only)."""
        if self.classifier is None:
            raise ValueError("This model is unconditional: it has no classifier.")
        (probs,) = self._batched(
            "classify", lambda t: self.classifier(t, training=False), IMAGE_SHAPE,
            _as_images(images))
        return probs

    # ---- The style prior ----------------------------------------------------------------
    @property
    def style_prior(self) -> GaussianMixture | None:
        """The fitted ex-post mixture over style codes, or None (not configured or not fitted)."""
        if not self.config.style_prior_components:
            return None
        weights = np.asarray(ops.convert_to_numpy(self.prior_weights), np.float64)
        if weights.sum() <= 0:
            return None
        return GaussianMixture(weights,
                               np.asarray(ops.convert_to_numpy(self.prior_means), np.float64),
                               np.asarray(ops.convert_to_numpy(self.prior_chols), np.float64))

    def set_style_prior(self, gmm: GaussianMixture):
        k, d = self.config.style_prior_components, self.config.latent_dim
        if gmm.means.shape != (k, d):
            raise ValueError(f"This model stores a mixture of {k} components over {d} style "
                             f"dims, not one with means of shape {gmm.means.shape}.")
        self.prior_weights.assign(np.asarray(gmm.weights, np.float32))
        self.prior_means.assign(np.asarray(gmm.means, np.float32))
        self.prior_chols.assign(np.asarray(gmm.chols, np.float32))

    @property
    def class_styles(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The fitted per-class style Gaussians (means (10, D), Cholesky factors (10, D, D)), or
        None (not configured or not fitted)."""
        if not self.config.class_matched_styles:
            return None
        chols = np.asarray(ops.convert_to_numpy(self.class_style_chols), np.float64)
        if not chols.any():
            return None
        return np.asarray(ops.convert_to_numpy(self.class_style_means), np.float64), chols

    def available_samplers(self) -> list[str]:
        """The samplers this model can use, its default first."""
        fitted = {"class": self.class_styles is not None, "mixture": self.style_prior is not None}
        return [s for s in SAMPLERS if fitted.get(s, True)]

    def default_sampler(self) -> str:
        return self.available_samplers()[0]

    def style_samples(self, seed: int, n: int = 1, temperature: float | None = None,
                      sampler: str | None = None, digits=None):
        """n style vectors fixed by the seed alone.

        sampler "normal": N(0, temperature^2 I). "mixture": the fitted ex-post mixture, each
        component's spread scaled by temperature. "class": each row's noise written into the
        spread of the class `digits[i]` (needs digits). None: the model's default (class-matched
        when fitted, else the mixture when fitted, else normal). temperature None: the model's
        `config.sample_temperature`.
        """
        sampler = sampler or self.default_sampler()
        if temperature is None:
            temperature = self.config.sample_temperature
        rng = np.random.default_rng(int(seed))
        if sampler == "normal":
            return (rng.standard_normal((n, self.config.latent_dim))
                    * temperature).astype(np.float32)
        if sampler == "class":
            if digits is None or len(digits) != n:
                raise ValueError("Class-matched styles depend on the digit: pass one digit per "
                                 "style (digits=...).")
            noise = rng.standard_normal((n, self._class_noise_draws(), self.config.latent_dim))
            return self._class_matched(noise, digits, temperature)
        if sampler != "mixture":
            raise ValueError(f"Unknown sampler {sampler!r}: choose one of {', '.join(SAMPLERS)}.")
        prior = self.style_prior
        if prior is None:
            raise ValueError("This model has no fitted style mixture: sample with "
                             "sampler='normal', or train with style_prior_components > 0.")
        return prior.sample(rng, n, temperature)

    def _class_noise_draws(self) -> int:
        """Noise vectors per class-matched style: the place in each class's spread, plus the
        kernel's blur when the model keeps styles (class_style_anchors)."""
        return 2 if self.config.class_style_anchors else 1

    def _class_matched(self, noise, digits, temperature) -> np.ndarray:
        """Row i: mu_d + temperature * L_d w, with d = digits[i] and w = noise[i, 0] (the
        Gaussian), or, with kept styles, the kept style of class d whose transport cell holds
        noise[i, 0], plus bandwidth * noise[i, 1]. noise (N, draws, D), or (1, draws, D) shared
        by all rows."""
        fitted = self.class_styles
        if fitted is None:
            raise ValueError("This model has no fitted class-matched styles: sample with "
                             "sampler='normal', or train with class_matched_styles on.")
        means, chols = fitted
        digits = _check_digits(digits)
        noise = np.broadcast_to(np.asarray(noise, np.float64),
                                (len(digits), self._class_noise_draws(), means.shape[1]))
        w = noise[:, 0]
        if self.config.class_style_anchors:
            from .style_prior import transported_anchor

            anchors = ops.convert_to_numpy(self.class_style_anchors)
            potentials = ops.convert_to_numpy(self.class_style_potentials)
            w = np.empty_like(w)
            for d in np.unique(digits):
                rows = digits == d
                kept = transported_anchor(noise[rows, 0], anchors[d], potentials[d])
                w[rows] = anchors[d][kept] + self.config.class_style_bandwidth * noise[rows, 1]
        return (means[digits] + temperature * np.einsum("nij,nj->ni", chols[digits], w)
                ).astype(np.float32)

    def fit_style_prior(self, images, seed: int | None = None) -> GaussianMixture | None:
        """Fit the configured ex-post style priors (the mixture, the class-matched Gaussians and
        kept styles) to the encoded means of `images` and store them in the model; returns the
        mixture."""
        from .style_prior import fit_class_anchors, fit_class_gaussians, fit_gmm

        if not (self.config.style_prior_components or self.config.class_matched_styles):
            raise ValueError("This model has no room for a style prior: set "
                             "style_prior_components > 0 or class_matched_styles in its config.")
        means, _ = self.encode(images)
        gmm = None
        if self.config.style_prior_components:
            gmm = fit_gmm(means, self.config.style_prior_components,
                          seed=self.config.seed if seed is None else seed)
            self.set_style_prior(gmm)
        if self.config.class_matched_styles:
            classes = self.classify(images).argmax(1)
            class_means, chols = fit_class_gaussians(means, classes, NUM_CLASSES)
            self.class_style_means.assign(class_means.astype(np.float32))
            self.class_style_chols.assign(chols.astype(np.float32))
            if self.config.class_style_anchors:
                anchors, potentials = fit_class_anchors(
                    means, classes, class_means, chols, self.config.class_style_anchors,
                    seed=self.config.seed if seed is None else seed)
                self.class_style_anchors.assign(anchors)
                self.class_style_potentials.assign(potentials)
        return gmm

    def latent_codes(self, styles, digits=None):
        """Decoder inputs: styles (N, latent) with one-hot(digits) appended when conditional."""
        styles = np.asarray(styles, np.float32)
        if self.classifier is None:
            return styles
        slots = np.eye(NUM_CLASSES, dtype=np.float32)[_check_digits(digits)]
        return np.concatenate([styles, slots], axis=1)

    def generate_grid(self, seeds, digits, temperature: float | None = None,
                      sampler: str | None = None):
        """Images (len(seeds), len(digits), 28, 28), decoded in one batched call.

        Conditional: row i uses the style of seeds[i] for every digit, so a row is one
        handwriting across digits. Unconditional: row i holds len(digits) prior samples drawn
        from seeds[i] (the digits themselves cannot be chosen). sampler: see `style_samples`.
        """
        codes = self.grid_codes(seeds, digits, temperature, sampler)
        return self.decode(codes).reshape(len(seeds), len(list(digits)), 28, 28)

    def grid_codes(self, seeds, digits, temperature: float | None = None,
                   sampler: str | None = None) -> np.ndarray:
        """The decoder inputs of `generate_grid`, row-major (seed by seed): (seeds x digits,
        latent [+ 10 class slots])."""
        digits = list(digits)
        n = len(digits)
        if self.classifier is not None and (sampler or self.default_sampler()) == "class":
            # One noise per seed (the seed's own N(0, I) draws), written into each digit's spread.
            t = self.config.sample_temperature if temperature is None else temperature
            draws = (self._class_noise_draws(), self.config.latent_dim)
            noise = np.stack([np.random.default_rng(int(s)).standard_normal(draws) for s in seeds])
            styles = self._class_matched(np.repeat(noise, n, axis=0), digits * len(seeds), t)
            return self.latent_codes(styles, digits * len(seeds))
        if self.classifier is not None:
            styles = np.concatenate(
                [np.repeat(self.style_samples(s, 1, temperature, sampler), n, axis=0)
                 for s in seeds])
            return self.latent_codes(styles, digits * len(seeds))
        return np.concatenate([self.style_samples(s, n, temperature, sampler) for s in seeds])

    def generate(self, digits, seed: int, temperature: float | None = None,
                 sampler: str | None = None):
        """float32 (len(digits), 28, 28): one shared style (from seed) written as each digit."""
        return self.generate_grid([seed], digits, temperature, sampler)[0]

    def restyle(self, images, digits) -> np.ndarray:
        """(N, len(digits), 28, 28): each image's own style written as each requested digit.

        The style is the posterior mean of the image (read with the classifier's view of its
        class when the encoder is class-conditioned); the class slots are set to one-hot(digit).
        """
        if self.classifier is None:
            raise ValueError("restyle needs a digit-conditioned model: this model is "
                             "unconditional, so its decoder has no class slots to set.")
        digits = list(digits)
        styles, _ = self.encode(images)
        codes = self.latent_codes(np.repeat(styles, len(digits), axis=0), digits * len(styles))
        return self.decode(codes).reshape(len(styles), len(digits), 28, 28)


def _sum_gradients(a, b):
    """Adds two gradients of one weight, either of which may be None (not connected)."""
    return b if a is None else a if b is None else a + b


def _spread(features):
    """Each column's standard deviation, with a floor under the variance: a dead unit's exact
    zero would give sqrt an infinite gradient."""
    return ops.sqrt(ops.var(features, axis=0) + 1e-6)


def _quiet_retracing_warning(tf):
    """TF counts traces per source line, so one trace per model of each entry point looks like
    "excessive retracing" once a process holds several models. It is expected here: hide it."""
    logger = tf.get_logger()
    if not any(isinstance(f, _RetracingFilter) for f in logger.filters):
        logger.addFilter(_RetracingFilter())


class _RetracingFilter:
    def filter(self, record):
        return "triggered tf.function retracing" not in record.getMessage()


def _as_images(images) -> np.ndarray:
    x = np.asarray(images, dtype=np.float32)
    if x.ndim == 2:
        x = x[None]
    if x.ndim == 3:
        x = x[..., None]
    if x.shape[1:] != IMAGE_SHAPE:
        raise ValueError(f"Expected images of shape (N, 28, 28) or (N, 28, 28, 1), got {x.shape}.")
    return x


def _check_digits(digits) -> np.ndarray:
    d = np.asarray(list(digits), dtype=np.int64)
    if d.size and (d.min() < 0 or d.max() >= NUM_CLASSES):
        raise ValueError(f"Digits must be between 0 and 9, got {list(digits)}.")
    return d
