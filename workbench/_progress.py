"""Progress bars for long dask computations (tqdm on the local schedulers)."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Iterator

from dask.callbacks import Callback

__all__ = ["progress"]


class _TqdmCallback(Callback):
    def __init__(self, desc: str):
        super().__init__()
        self._desc = desc
        self._bar = None

    def _start_state(self, dsk, state):  # noqa: D401 - dask callback
        from tqdm.auto import tqdm

        total = sum(len(state[k]) for k in ("ready", "waiting", "running", "finished"))
        self._bar = tqdm(total=total, desc=self._desc, unit="task", file=sys.stderr, leave=False)

    def _posttask(self, key, result, dsk, state, worker_id):
        if self._bar is not None:
            self._bar.update(1)

    def _finish(self, dsk, state, errored):
        if self._bar is not None:
            self._bar.close()


@contextmanager
def progress(desc: str, *, enabled: bool = True) -> Iterator[None]:
    """Show a tqdm bar over the dask tasks computed inside the block."""
    if not enabled:
        yield
        return
    with _TqdmCallback(desc):
        yield
