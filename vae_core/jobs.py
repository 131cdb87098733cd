"""Background training jobs, and a per-process bound on how many run at once.

A Streamlit process is shared by every visitor (one process on Community Cloud), so the app
keeps one `JobSlots` for the process and one `TrainingJob` per visitor. The job's thread never
touches UI state: viewers read `job.progress.snapshot()` and call `job.stop()`.
"""

from __future__ import annotations

import atexit
import threading
import weakref

from .config import VAEConfig
from .data import Dataset, DataUnavailableError
from .training import TrainingProgress, TrainResult, train


_running_jobs: "weakref.WeakSet[TrainingJob]" = weakref.WeakSet()


@atexit.register
def _stop_running_jobs():
    """Stop training threads before the interpreter tears TensorFlow down under them."""
    jobs = list(_running_jobs)
    for job in jobs:
        job.stop()
    for job in jobs:
        job.join(timeout=10)


class TrainingJob:
    def __init__(self, config: VAEConfig, dataset: Dataset | None = None, on_finish=None):
        self.config = config
        self.dataset = dataset
        self.progress = TrainingProgress(config)
        self.stop_event = threading.Event()
        self.result: TrainResult | None = None
        self._on_finish = on_finish
        self._thread = threading.Thread(target=self._run, name="vae-training", daemon=True)

    def start(self) -> "TrainingJob":
        _running_jobs.add(self)
        self._thread.start()
        return self

    def stop(self):
        """Ask the run to stop; it does so within one batch and keeps the model trained so far."""
        self.stop_event.set()

    def join(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _run(self):
        try:
            self.result = train(self.config, self.dataset, progress=self.progress,
                                stop_event=self.stop_event)
        except DataUnavailableError as e:
            self.progress.update(status="failed", reason=str(e))
        except Exception as e:  # surfaced to the viewer as a message, never a traceback
            self.progress.update(status="failed",
                                 reason=f"Training failed ({type(e).__name__}): {e}")
        finally:
            if self._on_finish is not None:
                self._on_finish(self)


class JobSlots:
    """At most `limit` concurrent training jobs in this process; extra requests are refused."""

    def __init__(self, limit: int = 1):
        if limit < 1:
            raise ValueError("The training job limit must be at least 1.")
        self.limit = limit
        self._lock = threading.Lock()
        self._active: set[TrainingJob] = set()

    @property
    def active(self) -> int:
        with self._lock:
            return len(self._active)

    def try_start(self, config: VAEConfig, dataset: Dataset | None = None) -> TrainingJob | None:
        """Start a job if a slot is free; None means the visitor must wait."""
        with self._lock:
            if len(self._active) >= self.limit:
                return None
            job = TrainingJob(config, dataset, on_finish=self._release)
            self._active.add(job)
        return job.start()

    def _release(self, job: TrainingJob):
        with self._lock:
            self._active.discard(job)
