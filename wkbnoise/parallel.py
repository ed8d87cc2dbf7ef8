"""Thread control for the Numba kernels and the BLAS library, restored on exit."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numba

from .errors import InputError

__all__ = ["threads", "serial_blas"]


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
