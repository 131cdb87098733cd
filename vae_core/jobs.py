"""Background training jobs, and a per-process bound on how many train (and wait) at once.

A Streamlit process is shared by every visitor (one process on Community Cloud), so the app
keeps one `JobSlots` for the process and one `TrainingJob` per visitor. A job is one run, or a
sweep of runs trained one after another. At most `limit` jobs train at a time; up to `queue`
more wait in line (first come, first served) with their place in
`job.progress.queue_position`; beyond that `try_start` refuses. A sweep goes back to the end of
the line after each of its runs, so one visitor's sweep never holds the slot for long. A
waiting job holds no data and no model. The job's thread never touches UI state: viewers read
`job.progress.snapshot()` and call `job.stop()` (which also leaves the queue).
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
    """One run, or several trained in turn (a sweep): `runs[i]` is run i's live progress and
    `results[i]` its result once it has finished; `progress`/`result` are the current run's."""

    def __init__(self, configs: VAEConfig | list[VAEConfig], dataset: Dataset | None = None,
                 slots: "JobSlots | None" = None):
        self.configs = list(configs) if isinstance(configs, (list, tuple)) else [configs]
        self.dataset = dataset
        self.runs = [TrainingProgress(c) for c in self.configs]
        self.results: list[TrainResult | None] = [None] * len(self.configs)
        self.current = 0
        self.stop_event = threading.Event()
        self._slots = slots
        self._thread = threading.Thread(target=self._run, name="vae-training", daemon=True)

    @property
    def config(self) -> VAEConfig:
        return self.configs[self.current]

    @property
    def progress(self) -> TrainingProgress:
        return self.runs[self.current]

    @property
    def result(self) -> TrainResult | None:
        return self.results[self.current]

    @property
    def is_sweep(self) -> bool:
        return len(self.configs) > 1

    def start(self) -> "TrainingJob":
        _running_jobs.add(self)
        self._thread.start()
        return self

    def stop(self):
        """Ask the run to stop; it does so within one batch and keeps the model trained so far.
        A sweep's later runs are cancelled."""
        self.stop_event.set()

    def join(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _run(self):
        try:
            for i, config in enumerate(self.configs):
                self.current = i
                if self._slots is not None:
                    if i:
                        self._slots.enqueue(self)
                    if not self._slots.acquire(self):
                        for later in self.runs[i:]:
                            later.update(status="stopped", queue_position=0,
                                         reason="Cancelled while waiting in the queue.")
                        return
                try:
                    self.progress.update(status="pending", queue_position=0)
                    self.results[i] = train(config, self.dataset, progress=self.progress,
                                            stop_event=self.stop_event)
                except DataUnavailableError as e:
                    self.progress.update(status="failed", reason=str(e))
                except Exception as e:  # surfaced to the viewer as a message, never a traceback
                    self.progress.update(status="failed",
                                         reason=f"Training failed ({type(e).__name__}): {e}")
                finally:
                    if self._slots is not None:
                        self._slots.release(self)
                if self.stop_event.is_set() or self.progress.status == "failed":
                    for later in self.runs[i + 1:]:
                        later.update(status="stopped", reason="Cancelled: the sweep stopped.")
                    return
        finally:
            if self._slots is not None:
                self._slots.release(self, leaving=True)


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

    def try_start(self, configs, dataset: Dataset | None = None) -> TrainingJob | None:
        """Start a job of one config or a list of them (it trains now, or waits in line);
        None when the queue is full too."""
        with self._cond:
            if len(self._running) + len(self._waiting) >= self.limit + self.queue:
                return None
            job = TrainingJob(configs, dataset, slots=self)
            self._waiting.append(job)
            if len(self._running) >= self.limit:  # else it takes a free slot at once
                self._number_queue()
        return job.start()

    def enqueue(self, job: TrainingJob):
        """Put a sweep back at the end of the line for its next run."""
        with self._cond:
            if job not in self._waiting:
                self._waiting.append(job)
            self._number_queue()

    def acquire(self, job: TrainingJob) -> bool:
        """Wait until `job` is first in line and a slot is free (True), or it is stopped."""
        with self._cond:
            while True:
                if job.stop_event.is_set():
                    if job in self._waiting:
                        self._waiting.remove(job)
                    self._number_queue()
                    self._cond.notify_all()
                    return False
                if self._waiting and self._waiting[0] is job and len(self._running) < self.limit:
                    self._waiting.pop(0)
                    self._running.add(job)
                    self._number_queue()
                    self._cond.notify_all()
                    return True
                self._cond.wait(timeout=0.25)  # also wakes to notice a stop request

    def release(self, job: TrainingJob, leaving: bool = False):
        """Free `job`'s slot (and, `leaving`, its place in line too)."""
        with self._cond:
            self._running.discard(job)
            if leaving and job in self._waiting:
                self._waiting.remove(job)
            self._number_queue()
            self._cond.notify_all()

    def _number_queue(self):
        for position, job in enumerate(self._waiting, start=1):
            job.progress.update(status="queued", queue_position=position)
