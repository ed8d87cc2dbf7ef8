"""Thread control for the Numba kernels and the BLAS library, restored on exit."""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections.abc import Callable, Iterator

import numba
import numpy as np

from .errors import InputError

__all__ = ["threads", "serial_blas", "Tuner", "BlasTuner", "map_chunks"]


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


def map_chunks(fn: Callable[[int, int], object], n: int, workers: int | None = None) -> list:
    """``[fn(k, slot) for k in range(n)]``, computed by ``workers`` threads that take chunks in turn.

    Every thread (the caller's included) runs one Numba thread, and the BLAS library runs one thread while
    the block lasts, so each ``fn(k, slot)`` computes exactly what it computes serially with one BLAS
    thread: the results do not depend on ``workers``. ``slot`` (0 .. workers - 1) names the calling thread,
    so ``fn`` can give each thread its own scratch arrays. ``fn`` must release the GIL for its heavy work
    (NumPy's matrix products and ufuncs and the runtime's ``nogil`` kernels do). The first exception raised
    by a chunk is raised here once every thread has stopped.

    Parameters
    ----------
    fn : callable
        ``fn(k, slot)`` -> the result of chunk ``k``.
    n : int
        Number of chunks, >= 0.
    workers : int, optional
        Threads, >= 1 (default: Numba's thread count, see :func:`threads`); ``workers == 1`` runs the
        chunks in order in the caller's thread, at the BLAS library's thread count.

    Returns
    -------
    list
        The results in chunk order.
    """
    workers = max(1, min(numba.get_num_threads() if workers is None else int(workers), int(n)))
    if workers == 1:
        return [fn(k, 0) for k in range(n)]
    from threadpoolctl import threadpool_limits

    results: list = [None] * n
    ticket = itertools.count()  # next() on it is atomic under the GIL
    errors: list[BaseException] = []

    def work(slot: int) -> None:
        while not errors:
            k = next(ticket)
            if k >= n:
                return
            try:
                results[k] = fn(k, slot)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
                errors.append(exc)
                return

    def helper(slot: int) -> None:
        numba.set_num_threads(1)  # this thread's own count (Numba keeps one per thread)
        work(slot)

    with threadpool_limits(limits=1, user_api="blas"):
        pool = [threading.Thread(target=helper, args=(slot,), daemon=True) for slot in range(1, workers)]
        for t in pool:
            t.start()
        try:
            with threads(1):
                work(0)
        except BaseException as exc:  # an interrupt in the caller: let the helpers stop after their chunk
            errors.append(exc)
        finally:
            for t in pool:
                t.join()
    if errors:
        raise errors[0]
    return results


class Tuner:
    """Runs a repeated computation in the setting that has been fastest, among settings that cannot change
    its result.

    :meth:`run` calls ``fn(setting)`` with the fastest setting seen so far. Its first call runs ``fn`` in
    every setting (with ``warm``, the first setting once more at the end: the first run absorbs the
    warm-up and the others are timed warm) and compares the results bit for bit: if they differ, tuning
    stops and every call keeps the first setting, so the numbers never depend on the machine's load. After
    ``reprobe`` calls a setting not in use is timed again (one per probe, in turn), so the choice follows
    the load; each probe that confirms the choice doubles the wait before the next one.

    Parameters
    ----------
    candidates : sequence
        The settings, the default first (at least one).
    reprobe : int
        Calls before the first new timing of the settings not in use (>= 2).
    warm : bool
        Time the first setting again at the end of the first call.
    """

    def __init__(self, candidates, reprobe: int = 8, warm: bool = True):
        if isinstance(reprobe, bool) or not isinstance(reprobe, int) or reprobe < 2:
            raise InputError(f"reprobe={reprobe!r} must be an integer >= 2.")
        self.candidates = tuple(candidates)
        if not self.candidates:
            raise InputError("candidates is empty: give at least one setting.")
        self.enabled = len(self.candidates) > 1
        self.reprobe = int(reprobe)
        self.warm = bool(warm)
        self.seconds: dict = {}
        self.calls = 0
        self._interval = self.reprobe
        self._next_probe = 1 + self.reprobe
        self._probes = 0

    @property
    def choice(self):
        """The setting the next ordinary call uses."""
        if not self.enabled or len(self.seconds) < len(self.candidates):
            return self.candidates[0]
        return min(self.candidates, key=lambda c: self.seconds[c])

    def _call(self, fn: Callable, setting):
        return fn(setting)

    def _timed(self, fn: Callable, setting):
        t0 = time.perf_counter()
        out = self._call(fn, setting)
        self.seconds[setting] = time.perf_counter() - t0
        return out

    def run(self, fn: Callable) -> np.ndarray:
        """``fn(setting)`` (array-valued) in the chosen setting; see the class."""
        self.calls += 1
        if not self.enabled:
            return self._call(fn, self.candidates[0])
        if len(self.seconds) < len(self.candidates):
            order = (*self.candidates, self.candidates[0]) if self.warm else self.candidates
            outs = [self._timed(fn, c) for c in order]
            if not all(np.array_equal(outs[0], o, equal_nan=True) for o in outs[1:]):
                self.enabled = False
                self.seconds.clear()
            return outs[0]
        best = self.choice
        if self.calls >= self._next_probe:
            others = [c for c in self.candidates if c != best]
            out = self._timed(fn, others[self._probes % len(others)])  # one other setting per probe, in turn
            self._probes += 1
            # the same choice again: probe half as often (a probe on a busy machine costs a slow call)
            self._interval = self._interval * 2 if self.choice == best else self.reprobe
            self._next_probe = self.calls + self._interval
            return out
        return self._timed(fn, best)


class BlasTuner(Tuner):
    """A :class:`Tuner` of the thread setting of repeated forward passes.

    Three ways to run a forward pass over several chunks on a machine with more than one core: the chunks
    side by side on their own threads (one BLAS thread each, :func:`map_chunks`), the chunks in turn with
    the BLAS library's own thread count, and the chunks in turn on one thread. On an idle machine the first
    is usually fastest (im2col, softmax and the elementwise work run on every core, not only the matrix
    products); on a shared machine a thread that waits for a busy core can make either threaded way slower
    than one thread (a VGG campaign with one CPU-bound process beside it: 0.31 trials/s on two BLAS
    threads, 0.90 on one; docs/performance.md). :meth:`run` calls ``fn(threads)`` with the fastest setting
    seen so far, under the setting's BLAS thread count; the first call times each setting and checks
    that all give the same array (see :class:`Tuner`).

    Parameters
    ----------
    reprobe : int
        Calls before the first new timing of the settings not in use (>= 2).

    Attributes
    ----------
    candidates : tuple of (int, int or None)
        The settings, ``(threads, blas)``: ``fn`` is called with ``threads`` while the BLAS library runs
        ``blas`` threads (``None``: as it is).
    """

    def __init__(self, reprobe: int = 8):
        from threadpoolctl import ThreadpoolController

        self._ctl = ThreadpoolController().select(user_api="blas")
        blas = max([int(i.get("num_threads", 1)) for i in self._ctl.info()] or [1])
        cores = numba.get_num_threads()
        candidates = []
        if cores > 1:
            candidates.append((cores, None))
        if blas > 1:
            candidates.append((1, blas))
        candidates.append((1, 1))
        super().__init__(candidates, reprobe)

    def _call(self, fn: Callable[[int], np.ndarray], setting: tuple[int, int | None]) -> np.ndarray:
        n, blas = setting
        with contextlib.ExitStack() as stack:
            if blas is not None:
                stack.enter_context(self._ctl.limit(limits=blas))
            return fn(n)
