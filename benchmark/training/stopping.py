"""Stopping a run without losing its steps: the first Ctrl-C (SIGINT) or SIGTERM (a scheduler's
preemption notice) asks the harness to stop at the next step boundary, where it writes a checkpoint
and raises `StopRequested`; a rerun resumes from that step. A second signal stops at once (the
job then resumes from its last periodic checkpoint).

The handlers are installed only around training, only from the main thread, and only where the
process still has Python's default handler for that signal: a host that installed its own
(submitit's requeue on SIGTERM, Ray, Dask) keeps it, and so does a signal the shell set to be
ignored (SIGINT in a background job).
"""
from __future__ import annotations

import os
import signal
import threading
from contextlib import contextmanager
from typing import Iterator

SIGNALS = (signal.SIGINT, signal.SIGTERM)
_DEFAULTS = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: signal.SIG_DFL}
_requested: list[int] = []  # the signal that asked to stop, while one is pending


class StopRequested(KeyboardInterrupt):
    """Raised at a step boundary after the checkpoint is written; `signum` is the signal that asked."""

    def __init__(self, signum: int):
        super().__init__(f"stopped by {signal.Signals(signum).name} with a checkpoint")
        self.signum = signum


def requested() -> int | None:
    """The signal that asked the current training to stop, or None."""
    return _requested[0] if _requested else None


def raise_if_requested() -> None:
    """Called at a step boundary once the state is saved: stop here if a signal asked to."""
    if _requested:
        raise StopRequested(_requested[0])


def _handler(signum: int, frame: object) -> None:
    if _requested:
        raise KeyboardInterrupt
    _requested.append(signum)
    os.write(2, f"\n{signal.Signals(signum).name}: stopping at the next step with a checkpoint "
                "(rerun the same command to resume; send it again to stop at once)\n".encode())


@contextmanager
def stop_at_step_boundary() -> Iterator[None]:
    """Within this block, the first SIGINT/SIGTERM asks for a checkpointed stop (see the module)."""
    main = threading.current_thread() is threading.main_thread()
    ours = [s for s in SIGNALS if main and signal.getsignal(s) is _DEFAULTS[s]]  # not one a shell set to ignore either
    if ours:
        _requested.clear()
    for s in ours:
        signal.signal(s, _handler)
    try:
        yield
    finally:
        for s in ours:
            signal.signal(s, _DEFAULTS[s])
