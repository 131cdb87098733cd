"""The networks a VAE is made of: encoder, decoder, classifier, and the two training critics."""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

from .config import IMAGE_SHAPE, NUM_CLASSES, VAEConfig

PIXELS = int(np.prod(IMAGE_SHAPE))


def conv_stack(x, width: int):
    """Two stride-2 convolutions: 28x28x1 -> 14x14xW -> 7x7x2W."""
    x = layers.Conv2D(width, 3, strides=2, padding="same", activation="relu")(x)
    return layers.Conv2D(2 * width, 3, strides=2, padding="same", activation="relu")(x)


def dense_stack(x, sizes):
    for size in sizes:
        x = layers.Dense(size, activation="relu")(x)
    return x


def build_encoder(config: VAEConfig) -> keras.Model:
    """q(z | x) -> (z_mean, z_log_var); with `encoder_conditional` the inputs are [image, class
    probabilities], which join the image features before the dense layers."""
    x_in = keras.Input(IMAGE_SHAPE, name="image")
    x = conv_stack(x_in, config.conv_width) if config.arch == "conv" else x_in
    x = layers.Flatten()(x)
    inputs = x_in
    if config.encoder_conditional:
        c_in = keras.Input((NUM_CLASSES,), name="class_probs")
        x = layers.Concatenate()([x, c_in])
        inputs = [x_in, c_in]
    x = dense_stack(x, config.hidden)
    z_mean = layers.Dense(config.latent_dim, name="z_mean")(x)
    z_log_var = layers.Dense(config.latent_dim, name="z_log_var")(x)
    return keras.Model(inputs, [z_mean, z_log_var], name="encoder")


def build_decoder(config: VAEConfig) -> keras.Model:
    """z (style, plus 10 class slots when conditional) -> pixel probabilities (N, 28, 28, 1).

    The last layer is named "logits" and the sigmoid is a layer of its own, so training computes
    BCE from the logits (numerically stable) while `decoder(z)` returns probabilities.
    """
    z_in = keras.Input((config.decoder_input_dim,), name="z")
    x = dense_stack(z_in, reversed(config.hidden))
    if config.arch == "conv":
        w = config.conv_width
        x = layers.Dense(7 * 7 * 2 * w, activation="relu")(x)
        x = layers.Reshape((7, 7, 2 * w))(x)
        x = layers.Conv2DTranspose(2 * w, 3, strides=2, padding="same", activation="relu")(x)
        x = layers.Conv2DTranspose(w, 3, strides=2, padding="same", activation="relu")(x)
        for _ in range(config.decoder_detail_convs):
            x = layers.Conv2D(w, 3, padding="same", activation="relu")(x)
        logits = layers.Conv2DTranspose(1, 3, padding="same", name="logits")(x)
    else:
        x = layers.Dense(PIXELS, name="logits")(x)
        logits = layers.Reshape(IMAGE_SHAPE)(x)
    probs = layers.Activation("sigmoid", name="pixel_probs")(logits)
    return keras.Model(z_in, probs, name="decoder")


def build_classifier(config: VAEConfig) -> keras.Model:
    """Image -> class probabilities: the conditional model's digit reader."""
    x_in = keras.Input(IMAGE_SHAPE, name="image")
    x = conv_stack(x_in, config.conv_width) if config.arch == "conv" else x_in
    x = dense_stack(layers.Flatten()(x), config.hidden)
    probs = layers.Dense(NUM_CLASSES, activation="softmax", name="class_probs")(x)
    return keras.Model(x_in, probs, name="classifier")


def build_style_adversary(config: VAEConfig) -> keras.Model:
    """Style mean -> class probabilities: the critic that keeps the class out of the style."""
    z_in = keras.Input((config.latent_dim,), name="style_mean")
    x = dense_stack(z_in, (256, 256))
    probs = layers.Dense(NUM_CLASSES, activation="softmax", name="class_probs")(x)
    return keras.Model(z_in, probs, name="style_adversary")


def build_image_critic(config: VAEConfig) -> keras.Model:
    """A real-or-decoded logit per image: the realism term's critic.

    Two stride-2 convolutions (critic_width, then twice as many channels); for conditional
    models a projection of the class one-hot onto the features (Miyato & Koyama 2018), so it
    asks "is this a real 7?", not only "is this a real digit?".
    """
    w = config.critic_width
    x_in = keras.Input(IMAGE_SHAPE, name="image")
    x = x_in
    for level in range(2):
        x = layers.Conv2D(w * 2 ** level, 3, strides=2, padding="same")(x)
        x = layers.LeakyReLU(0.2)(x)
    features = layers.Flatten()(x)
    logit = layers.Dense(1, name="realism_logit")(features)
    if not config.conditional:
        return keras.Model(x_in, logit, name="image_critic")
    c_in = keras.Input((NUM_CLASSES,), name="class_one_hot")
    class_embedding = layers.Dense(features.shape[-1], use_bias=False)(c_in)
    logit = layers.Add()([logit, layers.Dot(axes=1)([features, class_embedding])])
    return keras.Model([x_in, c_in], logit, name="image_critic")
