"""Thread control for the Numba kernels and the BLAS library, restored on exit."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator

import numba
import numpy as np

from .errors import InputError

__all__ = ["threads", "serial_blas", "BlasTuner"]


@contextlib.contextmanager
def threads(n: int | None) -> Iterator[int]:
    """Run the enclosed block with ``n`` Numba threads, then restore the previous count.

    Parameters
    ----------
    n : int or None
        Number of threads, 1 .. ``numba.config.NUMBA_NUM_THREADS``; ``None`` keeps the current count.

    Yields
    ------
    int
        The thread count in force inside the block.

    Examples
    --------
    >>> from wkbnoise import threads
    >>> with threads(1) as n:
    ...     n
    1
    """
    previous = numba.get_num_threads()
    if n is None:
        yield previous
        return
    limit = numba.config.NUMBA_NUM_THREADS
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= limit:
        raise InputError(f"threads={n!r} must be an integer in 1..{limit} (the cores Numba may use).")
    numba.set_num_threads(n)
    try:
        yield n
    finally:
        numba.set_num_threads(previous)


@contextlib.contextmanager
def serial_blas() -> Iterator[None]:
    """Run the enclosed block with one BLAS thread, then restore the previous count.

    A multi-threaded matrix product splits its sums differently for different thread counts, so its float32
    results differ in the last digits between ``OPENBLAS_NUM_THREADS=1`` and ``=2``. The computations whose
    results feed decisions (layer sensitivities, the distortion model, the bias term) run inside this block:
    with one thread the summation order is fixed, and the same seed gives the same numbers on any machine
    setting. The Monte Carlo campaign itself keeps every thread.
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield


class BlasTuner:
    """Runs repeated forward passes at the BLAS thread count that has been fastest, where that cannot change results.

    On a shared machine a two-thread matrix product whose second thread waits for a busy core ran at a third of
    its one-thread speed (a VGG campaign with one CPU-bound process beside it: 0.31 trials/s on two threads,
    0.90 on one; docs/performance.md), while on an idle machine two threads are faster. :meth:`run` calls
    ``fn()`` with the fastest thread count seen so far. Its first call runs ``fn`` three times, at the
    library's own count, at one thread and at the library's count again (the first run absorbs the warm-up;
    the other two are timed warm), and compares the results bit for bit: if they differ, tuning stops and every call
    keeps the library's count, so the numbers never depend on the machine's load. After ``reprobe`` calls the
    other count is timed again, so the choice follows the load; each probe that confirms the choice doubles
    the wait before the next one.

    Parameters
    ----------
    reprobe : int
        Calls before the first new timing of the count not in use (>= 2).
    """

    def __init__(self, reprobe: int = 8):
        from threadpoolctl import ThreadpoolController

        if isinstance(reprobe, bool) or not isinstance(reprobe, int) or reprobe < 2:
            raise InputError(f"reprobe={reprobe!r} must be an integer >= 2.")
        self._ctl = ThreadpoolController().select(user_api="blas")
        default = max([int(i.get("num_threads", 1)) for i in self._ctl.info()] or [1])
        self.candidates = (default, 1) if default > 1 else (1,)
        self.enabled = len(self.candidates) > 1
        self.reprobe = int(reprobe)
        self.seconds: dict[int, float] = {}
        self.calls = 0
        self._interval = self.reprobe
        self._next_probe = 1 + self.reprobe

    @property
    def choice(self) -> int:
        """The thread count the next ordinary call uses."""
        if not self.enabled or len(self.seconds) < len(self.candidates):
            return self.candidates[0]
        return min(self.candidates, key=lambda n: self.seconds[n])

    def _timed(self, fn: Callable[[], np.ndarray], n: int) -> np.ndarray:
        with self._ctl.limit(limits=n):
            t0 = time.perf_counter()
            out = fn()
            self.seconds[n] = time.perf_counter() - t0
        return out

    def run(self, fn: Callable[[], np.ndarray]) -> np.ndarray:
        """``fn()`` (an array-valued forward pass) at the chosen thread count; see the class."""
        self.calls += 1
        if not self.enabled:
            return fn()
        if len(self.seconds) < len(self.candidates):
            # the library's count first (it absorbs the first call's warm-up), then each count timed warm
            outs = [self._timed(fn, n) for n in (*self.candidates, self.candidates[0])]
            if not all(np.array_equal(outs[0], o, equal_nan=True) for o in outs[1:]):
                self.enabled = False
                self.seconds.clear()
            return outs[0]
        best = self.choice
        if self.calls >= self._next_probe:
            out = self._timed(fn, next(n for n in self.candidates if n != best))
            # the same choice again: probe half as often (a probe on a busy machine costs a slow call)
            self._interval = self._interval * 2 if self.choice == best else self.reprobe
            self._next_probe = self.calls + self._interval
            return out
        return self._timed(fn, best)
