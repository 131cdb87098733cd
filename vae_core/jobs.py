"""Background training jobs, and a per-process bound on how many run (and wait) at once.

A Streamlit process is shared by every visitor (one process on Community Cloud), so the app
keeps one `JobSlots` for the process and one `TrainingJob` per visitor. At most `limit` jobs
train at a time; up to `queue` more wait in line (first come, first served) with their position
in `job.progress.queue_position`; beyond that `try_start` refuses. A waiting job holds no data
and no model, so a full queue costs next to no memory. The job's thread never touches UI state:
viewers read `job.progress.snapshot()` and call `job.stop()` (which also leaves the queue).
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
    def __init__(self, config: VAEConfig, dataset: Dataset | None = None, on_finish=None,
                 wait_for_slot=None):
        self.config = config
        self.dataset = dataset
        self.progress = TrainingProgress(config)
        self.stop_event = threading.Event()
        self.result: TrainResult | None = None
        self._on_finish = on_finish
        self._wait_for_slot = wait_for_slot  # blocks until this job may train; False = cancelled
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
            if self._wait_for_slot is not None and not self._wait_for_slot(self):
                self.progress.update(status="stopped", queue_position=0,
                                     reason="Cancelled while waiting in the queue.")
                return
            self.progress.update(status="pending", queue_position=0)
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
    """At most `limit` concurrent training jobs in this process, and `queue` more waiting."""

    def __init__(self, limit: int = 1, queue: int = 0):
        if limit < 1:
            raise ValueError("The training job limit must be at least 1.")
        if queue < 0:
            raise ValueError("The training queue length cannot be negative.")
        self.limit = limit
        self.queue = queue
        self._cond = threading.Condition()
        self._running: set[TrainingJob] = set()
        self._waiting: list[TrainingJob] = []

    @property
    def active(self) -> int:
        """Jobs training right now."""
        with self._cond:
            return len(self._running)

    @property
    def waiting(self) -> int:
        with self._cond:
            return len(self._waiting)

    def has_room(self) -> bool:
        """Whether `try_start` would accept a job now (check this before loading anything)."""
        with self._cond:
            return len(self._running) + len(self._waiting) < self.limit + self.queue

    def try_start(self, config: VAEConfig, dataset: Dataset | None = None) -> TrainingJob | None:
        """Start a job (it trains now, or waits in line); None when the queue is full too."""
        with self._cond:
            if len(self._running) + len(self._waiting) >= self.limit + self.queue:
                return None
            job = TrainingJob(config, dataset, on_finish=self._release,
                              wait_for_slot=self._wait_for_slot)
            self._waiting.append(job)
            if len(self._running) >= self.limit:  # else it takes a free slot at once
                self._number_queue()
        return job.start()

    def _wait_for_slot(self, job: TrainingJob) -> bool:
        with self._cond:
            while True:
                if job.stop_event.is_set():
                    self._waiting.remove(job)
                    self._number_queue()
                    self._cond.notify_all()
                    return False
                if self._waiting[0] is job and len(self._running) < self.limit:
                    self._waiting.pop(0)
                    self._running.add(job)
                    self._number_queue()
                    self._cond.notify_all()
                    return True
                self._cond.wait(timeout=0.25)  # also wakes to notice a stop request

    def _number_queue(self):
        for position, job in enumerate(self._waiting, start=1):
            job.progress.update(status="queued", queue_position=position)

    def _release(self, job: TrainingJob):
        with self._cond:
            self._running.discard(job)
            if job in self._waiting:
                self._waiting.remove(job)
                self._number_queue()
            self._cond.notify_all()
