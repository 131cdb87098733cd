"""The VAE: encoder q(z|x), reparameterised sampling, decoder p(x|z), optional digit classifier.

Loss per image = reconstruction (BCE or MSE summed over the 784 pixels) + beta * KL(q(z|x) || N(0, I))
(+ classification cross-entropy when conditional), each averaged over the batch and reported by its
own `keras.metrics.Mean` tracker so `fit`, callbacks and progress bars show every term.
"""

from __future__ import annotations

import threading

import keras
import numpy as np
from keras import layers, ops

from .config import IMAGE_SHAPE, NUM_CLASSES, VAEConfig

_PIXELS = int(np.prod(IMAGE_SHAPE))
_INFERENCE_BATCH = 2048


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


def _conv_stack(x, dtype=None):
    """Two stride-2 convolutions: 28x28x1 -> 14x14x32 -> 7x7x64."""
    x = layers.Conv2D(32, 3, strides=2, padding="same", activation="relu", dtype=dtype)(x)
    return layers.Conv2D(64, 3, strides=2, padding="same", activation="relu", dtype=dtype)(x)


def _dense_stack(x, sizes, dtype=None):
    for size in sizes:
        x = layers.Dense(size, activation="relu", dtype=dtype)(x)
    return x


def build_encoder(config: VAEConfig) -> keras.Model:
    policy = compute_policy(config)
    x_in = keras.Input(IMAGE_SHAPE, name="image")
    x = _conv_stack(x_in, policy) if config.arch == "conv" else x_in
    x = _dense_stack(layers.Flatten(dtype=policy)(x), config.hidden, policy)
    z_mean = layers.Dense(config.latent_dim, name="z_mean", dtype="float32")(x)
    z_log_var = layers.Dense(config.latent_dim, name="z_log_var", dtype="float32")(x)
    return keras.Model(x_in, [z_mean, z_log_var], name="encoder")


def build_decoder(config: VAEConfig) -> keras.Model:
    """Maps z (style, plus 10 class slots when conditional) to pixel probabilities.

    The last layer is named "logits" and the sigmoid is a separate layer, so training can compute
    BCE from logits (numerically stable) while `decoder(z)` still returns probabilities.
    """
    policy = compute_policy(config)
    z_in = keras.Input((config.decoder_input_dim,), name="z")
    x = _dense_stack(z_in, reversed(config.hidden), policy)
    if config.arch == "conv":
        x = layers.Dense(7 * 7 * 64, activation="relu", dtype=policy)(x)
        x = layers.Reshape((7, 7, 64), dtype=policy)(x)
        x = layers.Conv2DTranspose(64, 3, strides=2, padding="same", activation="relu",
                                   dtype=policy)(x)
        x = layers.Conv2DTranspose(32, 3, strides=2, padding="same", activation="relu",
                                   dtype=policy)(x)
        logits = layers.Conv2DTranspose(1, 3, padding="same", name="logits", dtype=policy)(x)
    else:
        x = layers.Dense(_PIXELS, name="logits", dtype=policy)(x)
        logits = layers.Reshape(IMAGE_SHAPE, dtype=policy)(x)
    probs = layers.Activation("sigmoid", name="pixel_probs", dtype="float32")(logits)
    return keras.Model(z_in, probs, name="decoder")


def build_classifier(config: VAEConfig) -> keras.Model:
    policy = compute_policy(config)
    x_in = keras.Input(IMAGE_SHAPE, name="image")
    x = _conv_stack(x_in, policy) if config.arch == "conv" else x_in
    x = _dense_stack(layers.Flatten(dtype=policy)(x), config.hidden, policy)
    probs = layers.Dense(NUM_CLASSES, activation="softmax", name="class_probs",
                         dtype="float32")(x)
    return keras.Model(x_in, probs, name="classifier")


def kl_divergence(z_mean, z_log_var):
    """KL(N(mean, exp(log_var)) || N(0, I)) per latent dimension, in nats."""
    return -0.5 * (1.0 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var))


def reconstruction_loss(x, logits, kind: str):
    """Per-image reconstruction loss summed over pixels: Bernoulli NLL on grey levels, or SSE."""
    x = ops.reshape(x, (-1, _PIXELS))
    logits = ops.reshape(logits, (-1, _PIXELS))
    if kind == "bce":
        # Stable BCE from logits: softplus(l) - x*l  ==  -x log s(l) - (1-x) log(1-s(l)).
        per_pixel = ops.softplus(logits) - x * logits
    else:
        per_pixel = ops.square(x - ops.sigmoid(logits))
    return ops.sum(per_pixel, axis=1)


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
        self.sampling = Sampling(seed=config.seed, name="sampling")
        self.kl_weight = self.add_weight(
            name="kl_weight", shape=(), trainable=False,
            initializer=keras.initializers.Constant(config.beta))
        self._decoder_logits = keras.Model(
            self.decoder.inputs, self.decoder.get_layer("logits").output)
        names = ["loss", "reconstruction_loss", "kl_loss"]
        if config.conditional:
            names += ["classification_loss", "accuracy"]
        self.trackers = {n: keras.metrics.Mean(name=n) for n in names}
        self.history_log = {}  # per-epoch metrics; filled by `train` or `load_checkpoint`
        self.card = {}  # the checkpoint's card, when loaded from one
        self._inference_lock = threading.Lock()
        self._compiled = {}
        self.built = True

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

    def call(self, x, training=False):
        z_mean, z_log_var = self.encoder(x, training=training)
        z = self.sampling([z_mean, z_log_var])
        if self.classifier is not None:
            z = ops.concatenate([z, self.classifier(x, training=training)], axis=-1)
        return self.decoder(z, training=training)

    def compute_losses(self, x, y, training=False):
        """All loss terms for a batch, per image (shape (N,)), plus per-dim KL (N, latent)."""
        z_mean, z_log_var = self.encoder(x, training=training)
        z = self.sampling([z_mean, z_log_var])
        out = {}
        if self.classifier is not None:
            class_probs = self.classifier(x, training=training)
            out["classification_loss"] = keras.losses.sparse_categorical_crossentropy(
                y, class_probs)
            out["accuracy"] = ops.cast(
                ops.equal(ops.argmax(class_probs, axis=-1), ops.cast(y, "int64")), "float32")
            z = ops.concatenate([z, ops.stop_gradient(class_probs)], axis=-1)
        logits = ops.cast(self._decoder_logits(z, training=training), "float32")  # bf16 option
        out["reconstruction_loss"] = reconstruction_loss(x, logits, self.config.recon_loss)
        out["kl_per_dim"] = kl_divergence(z_mean, z_log_var)
        out["kl_loss"] = ops.sum(out["kl_per_dim"], axis=1)
        total = out["reconstruction_loss"] + self.kl_weight * out["kl_loss"]
        if self.classifier is not None:
            total = total + out["classification_loss"]
        out["loss"] = total
        return out

    def _update_trackers(self, losses):
        for name, tracker in self.trackers.items():
            tracker.update_state(ops.mean(losses[name]))
        return {name: tracker.result() for name, tracker in self.trackers.items()}

    def train_step(self, data):
        import tensorflow as tf  # the TensorFlow backend's GradientTape

        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        with tf.GradientTape() as tape:
            losses = self.compute_losses(x, y, training=True)
            loss = ops.mean(losses["loss"])
        grads = tape.gradient(loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
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
        """Posterior means and log-variances of images (N, 28, 28[, 1]) in [0, 1]."""
        x = _as_images(images)
        mean, log_var = self._batched(
            "encode", lambda t: self.encoder(t, training=False), IMAGE_SHAPE, x)
        return mean, log_var

    def decode(self, z):
        """Decoded pixel probabilities (N, 28, 28); conditional z = style dims + 10 class slots."""
        z = np.asarray(z, np.float32).reshape(-1, self.config.decoder_input_dim)
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

    def style_samples(self, seed: int, n: int = 1, temperature: float = 1.0):
        """n style vectors from N(0, temperature^2 I), fixed by the seed alone."""
        rng = np.random.default_rng(int(seed))
        return (rng.standard_normal((n, self.config.latent_dim)) * temperature).astype(np.float32)

    def latent_codes(self, styles, digits=None):
        """Decoder inputs: styles (N, latent) with one-hot(digits) appended when conditional."""
        styles = np.asarray(styles, np.float32)
        if self.classifier is None:
            return styles
        slots = np.eye(NUM_CLASSES, dtype=np.float32)[_check_digits(digits)]
        return np.concatenate([styles, slots], axis=1)

    def generate_grid(self, seeds, digits, temperature: float = 1.0):
        """Images (len(seeds), len(digits), 28, 28), decoded in one batched call.

        Conditional: row i uses the style of seeds[i] for every digit, so a row is one
        handwriting across digits. Unconditional: row i holds len(digits) prior samples drawn
        from seeds[i] (the digits themselves cannot be chosen).
        """
        digits = list(digits)
        n = len(digits)
        if self.classifier is not None:
            styles = np.concatenate(
                [np.repeat(self.style_samples(s, 1, temperature), n, axis=0) for s in seeds])
            codes = self.latent_codes(styles, digits * len(seeds))
        else:
            codes = np.concatenate([self.style_samples(s, n, temperature) for s in seeds])
        return self.decode(codes).reshape(len(seeds), n, 28, 28)

    def generate(self, digits, seed: int, temperature: float = 1.0):
        """float32 (len(digits), 28, 28): one shared style (from seed) written as each digit."""
        return self.generate_grid([seed], digits, temperature)[0]

    def restyle(self, images, digits):
        """float32 (N, len(digits), 28, 28): each image's style (its posterior mean) written as
        each requested digit, decoded in one batched call. Conditional models only."""
        if self.classifier is None:
            raise ValueError("restyle needs a digit-conditioned model: this one is "
                             "unconditional, so it cannot be asked for a digit.")
        digits = list(digits)
        styles, _ = self.encode(images)
        codes = self.latent_codes(np.repeat(styles, len(digits), axis=0), digits * len(styles))
        return self.decode(codes).reshape(len(styles), len(digits), 28, 28)


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
