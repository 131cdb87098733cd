"""Independent measures of sample quality: a "judge" classifier, conditional agreement, latent scale.

The judge is a small CNN trained on the real training images of a dataset. It shares nothing with
the VAE (not even its classifier head), so when it reads a generated "7" as a 7 that is evidence
the decoder draws a 7, not that two halves of one model agree with each other.

Judges are shipped as `.keras` files (`checkpoints/judges/<dataset>.keras`, ~0.6 MB each) rather
than retrained on demand: training on CPU is not bit-for-bit reproducible across thread counts, and
a metric is only comparable between checkpoints when the same judge scores them all.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from .config import IMAGE_SHAPE, NUM_CLASSES
from .data import Dataset, load_dataset

JUDGE_DIR = Path(__file__).resolve().parents[1] / "checkpoints" / "judges"
AGREEMENT_SEEDS = 100  # style seeds per class
PRIOR_SAMPLES = 1000  # samples scored for unconditional models


def judge_path(dataset: str) -> Path:
    return JUDGE_DIR / f"{dataset}.keras"


def build_judge():
    """Conv 32 -> pool -> conv 64 -> pool -> conv 64 -> dense 64 -> 10: ~160k weights, ~0.6 MB."""
    import keras
    from keras import layers

    return keras.Sequential([
        keras.Input(IMAGE_SHAPE),
        layers.Conv2D(32, 3, padding="same", activation="relu"),
        layers.MaxPooling2D(),
        layers.Conv2D(64, 3, padding="same", activation="relu"),
        layers.MaxPooling2D(),
        layers.Conv2D(64, 3, activation="relu"),  # 7x7 -> 5x5
        layers.Flatten(),
        layers.Dropout(0.3),
        layers.Dense(64, activation="relu"),
        layers.Dense(NUM_CLASSES, activation="softmax"),
    ], name="judge")


def train_judge(dataset: Dataset, epochs: int = 6, batch_size: int = 128, seed: int = 0,
                verbose: int = 0):
    """Train a judge on the real training set; returns (model, test accuracy, seconds)."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    judge = build_judge()
    judge.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    train_ds = (tf.data.Dataset.from_tensor_slices((dataset.x_train[..., None], dataset.y_train))
                .shuffle(len(dataset.x_train), seed=seed).batch(batch_size)
                .prefetch(tf.data.AUTOTUNE))
    started = time.time()
    judge.fit(train_ds, epochs=epochs, shuffle=False, verbose=verbose)
    seconds = time.time() - started
    # An uncompiled twin with the same weights: no optimizer slots, a third of the file size.
    twin = build_judge()
    twin.set_weights(judge.get_weights())
    accuracy = float((judge_predict(twin, dataset.x_test).argmax(1) == dataset.y_test).mean())
    return twin, accuracy, seconds


def load_judge(dataset: str, path=None):
    import keras

    path = Path(path) if path else judge_path(dataset)
    if not path.is_file():
        raise FileNotFoundError(
            f"No judge classifier at {path}: make one with "
            f"`python -m vae_core judge --dataset {dataset} --out {path}`.")
    return keras.saving.load_model(path, compile=False, safe_mode=True)


def judge_predict(judge, images) -> np.ndarray:
    """Class probabilities (N, 10) for images (N, 28, 28[, 1]) in [0, 1]."""
    x = np.asarray(images, np.float32).reshape(-1, *IMAGE_SHAPE)
    return np.asarray(judge.predict(x, batch_size=1000, verbose=0))


def conditional_agreement(model, judge, seeds=range(AGREEMENT_SEEDS)) -> dict:
    """Generate every class for each style seed (one batched call) and ask the judge what it sees.

    agreement: fraction of samples whose judge argmax is the requested class.
    mean_confidence: the judge's mean top probability on the samples (how clearly it sees *a*
    class); mean_prob_requested: its mean probability of the requested class.
    """
    seeds = list(seeds)
    grid = model.generate_grid(seeds, range(NUM_CLASSES))  # (S, 10, 28, 28)
    probs = judge_predict(judge, grid)
    requested = np.tile(np.arange(NUM_CLASSES), len(seeds))
    agree = probs.argmax(1) == requested
    return {
        "style_seeds": len(seeds),
        "samples": int(len(requested)),
        "agreement": float(agree.mean()),
        "per_class_agreement": [round(float(a), 4) for a in agree.reshape(len(seeds), -1).mean(0)],
        "mean_confidence": float(probs.max(1).mean()),
        "mean_prob_requested": float(probs[np.arange(len(requested)), requested].mean()),
    }


def prior_sample_census(model, judge, n: int = PRIOR_SAMPLES, seed: int = 0) -> dict:
    """Unconditional models: what the judge sees in n samples from the N(0, I) prior."""
    probs = judge_predict(judge, model.decode(model.style_samples(seed, n)))
    counts = np.bincount(probs.argmax(1), minlength=NUM_CLASSES)
    return {
        "samples": n,
        "class_fractions": [round(float(c) / n, 4) for c in counts],
        "mean_confidence": float(probs.max(1).mean()),
    }


def latent_scale(model, dataset: Dataset) -> dict:
    """Spread of the encoded posterior means over the test set (the prior's std is 1)."""
    means, _ = model.encode(dataset.x_test)
    return {
        "encoded_mean_std": float(means.std()),
        "encoded_mean_std_per_dim": [round(float(s), 4) for s in means.std(0)],
        "encoded_mean_abs_max": float(np.abs(means).max()),
    }


def quality_report(model, judge=None, dataset: Dataset | None = None,
                   judge_file=None) -> dict:
    """Every quality figure for one checkpoint, as a JSON-safe dict."""
    dataset = dataset or load_dataset(model.config.dataset)
    judge_file = Path(judge_file) if judge_file else judge_path(model.config.dataset)
    judge = judge if judge is not None else load_judge(model.config.dataset, judge_file)
    real = judge_predict(judge, dataset.x_test)
    report = {
        "judge": {
            "file": judge_file.name,
            "test_accuracy": float((real.argmax(1) == dataset.y_test).mean()),
            "mean_confidence_on_real_test": float(real.max(1).mean()),
        },
        "latent": latent_scale(model, dataset),
    }
    if model.config.conditional:
        report["conditional"] = conditional_agreement(model, judge)
    else:
        report["prior_samples"] = prior_sample_census(model, judge)
    return report


def update_card(path, section: str, value) -> dict:
    """Set card[section] = value in a checkpoint's card.json, replacing the file atomically."""
    card_file = Path(path) / "card.json"
    card = json.loads(card_file.read_text()) if card_file.exists() else {}
    card[section] = value
    fd, tmp = tempfile.mkstemp(prefix=".card.", suffix=".json", dir=card_file.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(card, f, indent=2)
        os.chmod(tmp, 0o644)
        os.replace(tmp, card_file)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return card
