"""The VAE: encoder q(z|x), reparameterised sampling, decoder p(x|z), optional digit classifier.

One `keras.Model` whose `train_step` computes every loss term of `losses.TERMS` and reports each
with its own `keras.metrics.Mean` tracker, so `fit`, callbacks and progress bars see them all.
Its inference methods (numpy in, numpy out) are thread-safe, so one loaded model can serve many
visitors at once.
"""

from __future__ import annotations

import threading
import warnings

import keras
import numpy as np
from keras import ops

from . import samplers
from .config import IMAGE_SHAPE, NUM_CLASSES, VAEConfig
from .losses import EVERY_WEIGHT, kl_divergence, reconstruction_loss, terms_of, tracker_names
from .networks import (build_classifier, build_decoder, build_encoder, build_image_critic,
                       build_style_adversary)

_INFERENCE_BATCH = 2048


@keras.saving.register_keras_serializable(package="vae_core")
class Sampling(keras.layers.Layer):
    """The reparameterisation trick: z = mean + std * eps, eps ~ N(0, I), so gradients reach
    mean and std."""

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


@keras.saving.register_keras_serializable(package="vae_core")
class VAE(keras.Model):
    """A VAE, optionally digit-conditioned.

    Conditional design: in training the decoder receives the *classifier's* softmax next to z,
    through a stop-gradient, and the classifier learns only from the labels, so reconstruction
    cannot turn the 10 class slots into extra style channels. To draw digit d the slots are set
    to one-hot(d), which the decoder reads because a trained classifier's outputs are nearly
    one-hot. `int8_dense` holds Dense weights as int8 (inference only, for shipping).
    """

    def __init__(self, config: VAEConfig | dict, int8_dense: bool = False, **kwargs):
        super().__init__(**kwargs)
        if isinstance(config, dict):
            config = VAEConfig.from_dict(config)
        self.config = config
        self.int8_dense = bool(int8_dense)
        self.terms = terms_of(config)
        self.encoder = build_encoder(config)
        self.decoder = build_decoder(config)
        self.classifier = build_classifier(config) if config.conditional else None
        self.style_adversary = (build_style_adversary(config)
                                if config.style_adversary_weight > 0 else None)
        self.image_critic = build_image_critic(config) if config.realism_weight > 0 else None
        if self.int8_dense:
            self._quantize_dense()
        self.sampling = Sampling(seed=config.seed, name="sampling")
        self.kl_weight = self.add_weight(
            name="kl_weight", shape=(), trainable=False,
            initializer=keras.initializers.Constant(config.beta))
        # The fitted style priors (samplers.fit) live in non-trainable weights, so they are
        # saved inside model.keras and survive a safe_mode load. All zeros = not fitted yet.
        d = config.latent_dim
        if config.style_prior_components:
            k = config.style_prior_components
            self.prior_weights = self._stored("prior_weights", (k,))
            self.prior_means = self._stored("prior_means", (k, d))
            self.prior_chols = self._stored("prior_chols", (k, d, d))
        if config.class_matched_styles:
            self.class_style_means = self._stored("class_style_means", (NUM_CLASSES, d))
            self.class_style_chols = self._stored("class_style_chols", (NUM_CLASSES, d, d))
            if config.class_style_anchors:
                m = config.class_style_anchors
                self.class_style_anchors = self._stored("class_style_anchors",
                                                        (NUM_CLASSES, m, d))
                self.class_style_potentials = self._stored("class_style_potentials",
                                                           (NUM_CLASSES, m))
        if config.consistency_weight > 0 or config.realism_weight > 0:
            self.consistency_seed = keras.random.SeedGenerator(config.seed + 1)
        self._decoder_logits = keras.Model(
            self.decoder.inputs, self.decoder.get_layer("logits").output)
        self.trackers = {n: keras.metrics.Mean(name=n) for n in tracker_names(config)}
        self.history_log = {}  # per-epoch metrics; filled by `train` or `load_checkpoint`
        self.card = {}  # the checkpoint's card, when loaded from one
        self.training_snapshots = None  # per-epoch history (vae_core.history), when recorded
        self._inference_lock = threading.Lock()
        self._compiled = {}
        self.sampler_arrays = {}  # numpy copies of the fitted styles (samplers reads, fit clears)
        self.built = True

    def _stored(self, name, shape):
        return self.add_weight(name=name, shape=shape, trainable=False, initializer="zeros")

    def _quantize_dense(self):
        # The image critic is not quantized: it only serves training, which int8 models refuse.
        with warnings.catch_warnings():  # "Layer X does not have a `quantize` method": expected
            warnings.simplefilter("ignore", UserWarning)
            for network in (self.encoder, self.decoder, self.classifier, self.style_adversary):
                if network is not None:
                    network.quantize("int8")

    def with_int8_dense(self) -> "VAE":
        """An inference-only copy whose Dense layers hold int8 weights (per-channel scales): a
        quarter of the file size, for shipping. Quality figures must be measured on the copy."""
        twin = VAE(self.config, name=self.name)
        twin.set_weights(self.get_weights())
        twin._quantize_dense()
        twin.int8_dense = True
        twin.history_log, twin.card = self.history_log, self.card
        twin.training_snapshots = self.training_snapshots
        return twin

    @property
    def epochs_trained(self) -> int:
        """Epochs actually run (fewer than config.epochs when a run was stopped early)."""
        return len(self.history_log.get("loss", []))

    # ---- Keras plumbing -------------------------------------------------------------------
    @property
    def metrics(self):
        return list(self.trackers.values())

    def get_config(self):
        return {"config": self.config.to_dict(), "int8_dense": self.int8_dense,
                "name": self.name}

    @classmethod
    def from_config(cls, config):
        inner = dict(config["config"])
        int8 = config.get("int8_dense", inner.get("int8_dense", False))  # older files: inside
        return cls(VAEConfig.from_dict(inner), int8_dense=int8, name=config.get("name"))

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
        """Every loss term of this model for a batch, per image (shape (N,)), the per-dim KL
        (N, latent), the accuracies, and "loss", the weighted total."""
        out = {}
        class_probs = None
        if self.classifier is not None:
            class_probs = self.classifier(x, training=training)
            out["classification_loss"] = keras.losses.sparse_categorical_crossentropy(
                y, class_probs)
            out["accuracy"] = _hits(class_probs, y)
            class_probs = ops.stop_gradient(class_probs)
        z_mean, z_log_var = self.encoder(self._encoder_inputs(x, class_probs), training=training)
        z = self.sampling([z_mean, z_log_var])
        codes = z if class_probs is None else ops.concatenate([z, class_probs], axis=-1)
        logits = self._decoder_logits(codes, training=training)
        out["reconstruction_loss"] = reconstruction_loss(x, logits, self.config.recon_loss)
        out["kl_per_dim"] = kl_divergence(z_mean, z_log_var)
        out["kl_loss"] = ops.sum(out["kl_per_dim"], axis=1)
        if self.style_adversary is not None:
            # The adversary reads a stop-gradient copy, so its own loss reaches no other weight.
            adv_probs = self.style_adversary(ops.stop_gradient(z_mean), training=training)
            out["adversary_loss"] = keras.losses.sparse_categorical_crossentropy(y, adv_probs)
            out["adversary_accuracy"] = _hits(adv_probs, y)
            leak_probs = self.style_adversary(z_mean, training=training)
            out["style_leak_loss"] = -ops.mean(ops.log(ops.clip(leak_probs, 1e-7, 1.0)), axis=-1)
        if self.config.consistency_weight > 0 or self.image_critic is not None:
            images, labels = self._random_class_decodes(z, training)
        if self.config.consistency_weight > 0:
            out["consistency_loss"] = keras.losses.sparse_categorical_crossentropy(
                labels, self.classifier(images, training=training))
        if self.image_critic is not None:
            fakes, fake_labels = images, labels
            if self.config.realism_on_reconstructions:
                # The batch's reconstructions too, with their true classes (Larsen et al. 2016).
                fakes = ops.concatenate(
                    [images, ops.reshape(ops.sigmoid(logits), (-1, *IMAGE_SHAPE))], axis=0)
                fake_labels = None if labels is None else ops.concatenate(
                    [ops.cast(labels, "int32"), ops.cast(y, "int32")], axis=0)
            real_logit = self._critic(x, y, training)
            fake_logit = self._critic(fakes, fake_labels, training)
            caught, fooled = ops.softplus(fake_logit), ops.softplus(-fake_logit)
            if self.config.realism_on_reconstructions:  # each kind of decoded image at half weight
                n = ops.shape(x)[0]
                caught, fooled = 0.5 * (caught[:n] + caught[n:]), 0.5 * (fooled[:n] + fooled[n:])
            out["critic_loss"] = ops.softplus(-real_logit) + caught
            out["realism_loss"] = fooled
        out["loss"] = sum(self._weight(term) * out[term.name] for term in self.terms)
        return out

    def _weight(self, term):
        if term.weight is None:
            return 1.0
        if term.weight == "beta":
            return self.kl_weight  # a variable, so a warm-up can ramp it
        return getattr(self.config, term.weight)

    def _random_class_decodes(self, z, training):
        """The batch's style codes, shuffled (stop-gradient), or as many N(0, I) draws
        (decoded_styles), decoded with random one-hots: images (N, 28, 28, 1) and the requested
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
        with tf.GradientTape(persistent=True) as tape:
            losses = self.compute_losses(x, y, training=True)
            per_network = {}  # one backward pass per network, over the sum of its own terms
            for term in self.terms:
                value = self._weight(term) * ops.mean(losses[term.name])
                per_network[term.trains] = per_network.get(term.trains, 0.0) + value
        weights = self.trainable_weights
        grads = tape.gradient(per_network.pop(EVERY_WEIGHT), weights)
        for network, loss in per_network.items():
            own = getattr(self, network).trainable_weights
            extra = dict(zip(map(id, own), tape.gradient(loss, own)))
            grads = [_sum_gradients(g, extra.get(id(w))) for g, w in zip(grads, weights)]
        del tape
        self.optimizer.apply_gradients(zip(grads, weights))
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
        (probs,) = self._batched("decode", lambda t: self.decoder(t, training=False),
                                 (width,), z)
        return probs[..., 0]

    def classify(self, images):
        """Class probabilities (N, 10) from the classifier head (conditional models only)."""
        if self.classifier is None:
            raise ValueError("This model is unconditional: it has no classifier.")
        (probs,) = self._batched(
            "classify", lambda t: self.classifier(t, training=False), IMAGE_SHAPE,
            _as_images(images))
        return probs

    def latent_codes(self, styles, digits=None):
        """Decoder inputs: styles (N, latent) with one-hot(digits) appended when conditional."""
        styles = np.asarray(styles, np.float32)
        if self.classifier is None:
            return styles
        slots = np.eye(NUM_CLASSES, dtype=np.float32)[samplers.check_digits(digits)]
        return np.concatenate([styles, slots], axis=1)

    def generate_grid(self, seeds, digits, temperature: float = 1.0, sampler: str | None = None):
        """Images (len(seeds), len(digits), 28, 28), decoded in one batched call.

        Conditional: row i writes the style of seeds[i] as every digit (one handwriting).
        Unconditional: row i holds len(digits) samples drawn from seeds[i]. `sampler` names one
        of `samplers.available(model)` (None: the model's default).
        """
        codes = samplers.get(self, sampler).grid_codes(seeds, digits, temperature)
        return self.decode(codes).reshape(len(seeds), len(list(digits)), 28, 28)

    def generate(self, digits, seed: int, temperature: float = 1.0, sampler: str | None = None):
        """float32 (len(digits), 28, 28): one shared style (from seed) written as each digit."""
        return self.generate_grid([seed], digits, temperature, sampler)[0]

    def restyle(self, images, digits) -> np.ndarray:
        """(N, len(digits), 28, 28): each image's own style (its posterior mean) written as each
        requested digit."""
        if self.classifier is None:
            raise ValueError("restyle needs a digit-conditioned model: this model is "
                             "unconditional, so its decoder has no class slots to set.")
        digits = list(digits)
        styles, _ = self.encode(images)
        codes = self.latent_codes(np.repeat(styles, len(digits), axis=0), digits * len(styles))
        return self.decode(codes).reshape(len(styles), len(digits), 28, 28)


def _hits(probs, y):
    return ops.cast(ops.equal(ops.argmax(probs, axis=-1), ops.cast(y, "int64")), "float32")


def _sum_gradients(a, b):
    """Adds two gradients of one weight, either of which may be None (not connected)."""
    return b if a is None else a if b is None else a + b


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
