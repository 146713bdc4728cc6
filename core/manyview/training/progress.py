"""Progress on a terminal (a tqdm bar) or as plain lines (logs, CI, pipes)."""

from __future__ import annotations

import sys
import time
from typing import Any


class Progress:
    """Shows the step, loss, throughput and ETA.

    Args:
        total: the run's last step.
        start: the first step (after a resume).
        enabled: show anything at all (rank 0 only).
        stream: where to write (default ``sys.stderr``).
    """

    def __init__(
        self, total: int, start: int = 0, *, enabled: bool = True, stream: Any = None
    ) -> None:
        self.total, self.enabled = total, enabled
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.bar = None
        self.started = time.perf_counter()
        self.start_step = start
        if enabled and self.tty:
            from tqdm import tqdm

            self.bar = tqdm(
                total=total,
                initial=start,
                file=self.stream,
                unit="step",
                dynamic_ncols=True,
                desc="train",
            )

    def update(self, step: int, metrics: dict[str, Any]) -> None:
        """Called at every logged step."""
        if not self.enabled:
            return
        shown = {"loss": f"{metrics['loss']:.4f}", "samples/s": f"{metrics['samples_per_s']:.0f}"}
        if self.bar is not None:
            self.bar.n = step
            self.bar.set_postfix(shown, refresh=True)
            return
        elapsed = time.perf_counter() - self.started
        done = max(1, step - self.start_step)
        eta = elapsed / done * (self.total - step)
        print(
            f"step {step}/{self.total}  loss {shown['loss']}  lr {metrics['lr']:.3g}  "
            f"{shown['samples/s']} samples/s  eta {eta:.0f}s",
            file=self.stream,
            flush=True,
        )

    def write(self, message: str) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.write(message, file=self.stream)
        else:
            print(message, file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
