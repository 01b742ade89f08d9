"""Watching a training run: what it measured, and a progress bar for a person.

``RunMeter`` and ``ProgressBar`` are plain listeners (``begin``/``step``/``log``/
``end`` with the Trainer's state); ``as_trainer_callback`` wraps them in the one
``transformers.TrainerCallback`` the Trainer is given, so transformers is imported
only when training actually starts.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, Protocol


class Listener(Protocol):
    def begin(self, state: Any) -> None: ...
    def step(self, state: Any) -> None: ...
    def log(self, state: Any, logs: Mapping[str, Any]) -> None: ...
    def end(self, state: Any) -> None: ...


class RunMeter:
    """This session's optimiser steps, input tokens (padding excluded) and seconds.

    A resumed run counts from where it resumed: the tokens/s are this machine's.
    """

    def __init__(self) -> None:
        self.start_step = self.step_now = 0
        self.start_tokens = self.tokens_now = 0
        self._t0: float | None = None
        self._t1: float | None = None
        self.last_loss: float | None = None

    def begin(self, state: Any) -> None:
        self._t0 = time.perf_counter()
        self.start_step = self.step_now = int(state.global_step)
        self.start_tokens = self.tokens_now = int(state.num_input_tokens_seen)

    def step(self, state: Any) -> None:
        self.step_now = int(state.global_step)
        self.tokens_now = int(state.num_input_tokens_seen)

    def log(self, state: Any, logs: Mapping[str, Any]) -> None:
        if "loss" in logs:
            self.last_loss = float(logs["loss"])

    def end(self, state: Any) -> None:
        self.step(state)
        self._t1 = time.perf_counter()

    @property
    def seconds(self) -> float:
        if self._t0 is None:
            return 0.0
        return (self._t1 or time.perf_counter()) - self._t0

    @property
    def tokens(self) -> int:
        """Input tokens trained on in this session."""
        return self.tokens_now - self.start_tokens

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0


class ProgressBar:
    """A rich progress bar on stderr: step, loss, tokens/s and the time left."""

    def __init__(self, meter: RunMeter, *, console: Any = None) -> None:
        self.meter = meter
        self.console = console
        self._progress: Any = None
        self._task: Any = None

    def begin(self, state: Any) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(
            TextColumn("training"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"),
            TextColumn("{task.fields[tps]} tok/s"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self.console or Console(stderr=True),
        )
        self._progress.start()
        self._task = self._progress.add_task(
            "training",
            total=int(state.max_steps) or None,
            completed=int(state.global_step),
            loss="-",
            tps="-",
        )

    def step(self, state: Any) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=int(state.global_step))

    def log(self, state: Any, logs: Mapping[str, Any]) -> None:
        if self._progress is None or "loss" not in logs:
            return
        self._progress.update(
            self._task, loss=f"{float(logs['loss']):.4f}", tps=f"{self.meter.tokens_per_s:.0f}"
        )

    def end(self, state: Any) -> None:
        self.step(state)
        self.close()

    def close(self) -> None:
        """Stop drawing (also when the run is interrupted before its end)."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def as_trainer_callback(listeners: Sequence[Listener]) -> Any:
    """One ``TrainerCallback`` that forwards the Trainer's events to ``listeners``, in order."""
    from transformers import TrainerCallback

    class _Forward(TrainerCallback):
        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            for listener in listeners:
                listener.begin(state)

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            for listener in listeners:
                listener.step(state)

        def on_log(
            self,
            args: Any,
            state: Any,
            control: Any,
            logs: Mapping[str, Any] | None = None,
            **kwargs: Any,
        ) -> None:
            for listener in listeners:
                listener.log(state, logs or {})

        def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            for listener in listeners:
                listener.end(state)

    return _Forward()
