"""vae_core: variational autoencoders on MNIST and Fashion-MNIST, in Keras 3 (TensorFlow).

No UI code lives here; the Streamlit pages and the CLI are thin layers over this package.
"""

import os

# Must happen before TensorFlow/Keras are first imported.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from .checkpoints import (CheckpointError, checkpoint_zip, is_checkpoint,  # noqa: E402
                          list_checkpoints, load_checkpoint, load_checkpoint_zip, save_checkpoint)
from .config import ConfigError, VAEConfig  # noqa: E402
from .data import CLASS_NAMES, Dataset, DataUnavailableError, load_dataset  # noqa: E402
from .evaluate import evaluate  # noqa: E402
from .models import VAE  # noqa: E402
from .training import TrainingProgress, TrainResult, train  # noqa: E402

__all__ = [
    "CLASS_NAMES", "CheckpointError", "ConfigError", "DataUnavailableError", "Dataset", "VAE",
    "VAEConfig", "TrainResult", "TrainingProgress", "checkpoint_zip", "evaluate",
    "is_checkpoint", "list_checkpoints", "load_checkpoint", "load_checkpoint_zip",
    "load_dataset", "save_checkpoint", "train",
]
