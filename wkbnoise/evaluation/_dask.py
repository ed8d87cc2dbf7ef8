"""Dask back end of :mod:`wkbnoise.evaluation.executor` (optional extra ``wkbnoise[dask]``).

Each worker holds an :class:`EvaluatorCache` (a Dask worker plugin, registered by the client and given to
workers that join later): the Evaluators of the last two (campaign, model) pairs it has seen, built on the
first task that needs one. A task is ``run_block(token, recipe, block)``: the recipe is the campaign's
configuration as JSON plus the model loader, the block a :class:`~wkbnoise.evaluation.executor.TrialRequest`
of a few trials, so tasks stay small and the model and images are loaded once per worker. An Evaluator's
buffers serve one task at a time (a lock per Evaluator), and every task runs on one Numba thread.

The plugin also sets the worker's C allocator back to reusing freed memory (:func:`reuse_freed_memory`):
Dask starts workers with ``MALLOC_TRIM_THRESHOLD_=65536``, and under it a LeNet-5 trial took 8,123 page
faults and about 1.5x the time.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import sys
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Iterator

from distributed import Client, LocalCluster, WorkerPlugin, as_completed, get_worker

from ..errors import InputError, WkbnoiseError
from ..parallel import threads
from .campaign import Evaluator, TrialResult
from .executor import EvaluatorRecipe, TrialRequest, fingerprint, join_blocks, split_blocks

__all__ = ["DaskExecutor", "EvaluatorCache", "connect", "run_block", "reuse_freed_memory", "WORKER_ENV",
           "QUIET_HTTP"]

PLUGIN = "wkbnoise-evaluators"

#: no dashboard, and the scheduler's HTTP routes on a free port (the default 8787 may be taken)
QUIET_HTTP = {"dashboard_address": ":0", "scheduler_kwargs": {"dashboard": False}}

#: environment of local worker processes: one thread per pool (one worker process per core)
WORKER_ENV = {"NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
              "MKL_NUM_THREADS": "1"}


#: glibc ``mallopt`` settings of a worker process [bytes]: blocks up to 32 MiB come from the heap, and up to
#: 64 MiB of freed heap stays with the process (glibc's own adaptive limits on 64-bit Linux)
MALLOC_MMAP_THRESHOLD = 32 << 20
MALLOC_TRIM_THRESHOLD = 64 << 20


def reuse_freed_memory() -> bool:
    """Let this process's C allocator reuse freed blocks of up to 32 MiB (glibc on Linux; elsewhere a no-op).

    Dask's nanny starts workers with ``MALLOC_TRIM_THRESHOLD_=65536`` so that they hand freed memory back
    to the system. Setting it also turns off glibc's adaptive mmap threshold: every array over 128 KiB is
    then mapped afresh and zero-filled page by page. A forward pass allocates its activations anew each
    call. Measured on one thread with that variable set, a LeNet-5 trial (1,000 images) took 8,123 page
    faults and 79-88 ms; after this call, 0 faults and 60 ms; in a process started without the variable,
    1 fault and 51-53 ms (separate processes, within this 2-core VM's spread). The worker's memory then
    stays at the size of a forward pass's working set instead of falling back between tasks.

    Returns
    -------
    bool
        Whether both settings were accepted.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library this process runs on
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # <malloc.h>
    mmap_ok = mallopt(m_mmap_threshold, MALLOC_MMAP_THRESHOLD)
    trim_ok = mallopt(m_trim_threshold, MALLOC_TRIM_THRESHOLD)
    return bool(mmap_ok) and bool(trim_ok)


class EvaluatorCache(WorkerPlugin):
    """Worker-side store of Evaluators keyed by their recipe's token (at most ``size`` kept)."""

    name = PLUGIN

    def __init__(self, size: int = 2):
        self.size = int(size)

    def setup(self, worker) -> None:
        reuse_freed_memory()
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[threading.Lock, list]] = OrderedDict()

    @contextlib.contextmanager
    def use(self, token: str, recipe: EvaluatorRecipe) -> Iterator[Evaluator]:
        """The Evaluator of ``recipe``, built on first use, held by this task alone while in use."""
        with self._lock:
            entry = self._entries.get(token)
            if entry is None:
                entry = self._entries[token] = (threading.Lock(), [])
                while len(self._entries) > self.size:
                    self._entries.popitem(last=False)
            self._entries.move_to_end(token)
        lock, slot = entry
        with lock:
            if not slot:
                slot.append(recipe.build())
            yield slot[0]


def run_block(token: str, recipe: EvaluatorRecipe, block: TrialRequest) -> tuple[TrialResult, tuple]:
    """Worker task: one block of trials, and the fingerprint of the Evaluator that ran it."""
    worker = get_worker()
    cache = worker.plugins[PLUGIN]
    try:
        with threads(1), cache.use(token, recipe) as ev:
            return block.run(ev), fingerprint(ev)
    except WkbnoiseError as exc:  # say where: the client's files may not exist on that machine
        raise type(exc)(f"on the Dask worker {worker.address}: {exc}") from exc


class DaskExecutor:
    """Runs blocks of trials on the workers of a ``dask.distributed`` client.

    Parameters
    ----------
    client : distributed.Client
        A connected client; the Evaluator cache plugin is registered on its workers.
    where : str
        What the cluster is, for the log.
    """

    def __init__(self, client: Client, where: str = "a Dask cluster"):
        self.client = client
        self.where = where
        self._session = uuid.uuid4().hex  # tokens of this client never name another client's Evaluators
        self._tokens: dict[EvaluatorRecipe, str] = {}
        client.register_plugin(EvaluatorCache(), name=PLUGIN)

    @property
    def workers(self) -> int:
        """Worker threads of the cluster now (at least 1)."""
        info = self.client.scheduler_info()
        return max(1, sum(int(w.get("nthreads", 1)) for w in info.get("workers", {}).values()))

    def describe(self) -> str:
        """One line for the log."""
        return f"on {self.where} ({self.workers} worker threads)"

    def _token(self, recipe: EvaluatorRecipe) -> str:
        if recipe not in self._tokens:
            self._tokens[recipe] = f"{self._session}-{len(self._tokens)}"
        return self._tokens[recipe]

    def trials(self, recipe: EvaluatorRecipe, ev: Evaluator,
               requests: Iterable[TrialRequest]) -> Iterator[tuple[int, TrialResult]]:
        """Yield ``(index of the request, its TrialResult)`` as each request's blocks are all back.

        Parameters
        ----------
        recipe : EvaluatorRecipe
            How workers build the model's Evaluator.
        ev : Evaluator
            The client's Evaluator of the same model: workers whose Evaluator differs from it (other
            versions or files on that machine) are refused.
        requests : iterable of TrialRequest
        """
        requests = list(requests)
        token = self._token(recipe)
        want = fingerprint(ev)
        blocks = split_blocks(requests, self.workers)
        futures = {}
        for n, (i, block) in enumerate(blocks):
            futures[self.client.submit(run_block, token, recipe, block, pure=False)] = (i, n)
        left = {}
        for i, _ in blocks:
            left[i] = left.get(i, 0) + 1
        parts: dict[int, dict[int, TrialResult]] = {}
        try:
            for fut in as_completed(list(futures)):
                i, n = futures[fut]
                res, got = fut.result()
                if got != want:
                    raise InputError(
                        f"a Dask worker built another model than this process (clean and INT metric "
                        f"{got[1:]} there, {want[1:]} here): install the same wkbnoise and NumPy on every "
                        "worker, with the model and input files at the same paths.")
                parts.setdefault(i, {})[n] = res
                left[i] -= 1
                if left[i] == 0:
                    done = parts.pop(i)
                    yield i, join_blocks([done[k] for k in sorted(done)])
        finally:
            pending = [f for f in futures if not f.done()]
            if pending:
                self.client.cancel(pending)


@contextlib.contextmanager
def connect(workers: int | None, scheduler: str | None, timeout_s: float) -> Iterator[DaskExecutor]:
    """A :class:`DaskExecutor` on a new local cluster of ``workers`` processes or on ``scheduler``."""
    if workers is not None:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               silence_logs=logging.ERROR, env=dict(WORKER_ENV), **QUIET_HTTP)
        with cluster, Client(cluster) as client:
            yield DaskExecutor(client, f"a local Dask cluster of {workers} worker process"
                               + ("es" if workers > 1 else ""))
        return
    try:
        client = Client(scheduler, timeout=f"{timeout_s}s")
    except (OSError, TimeoutError) as exc:
        raise InputError(f"--scheduler={scheduler!r}: no Dask scheduler answered within {timeout_s:g} s "
                         f"({type(exc).__name__}). Start one with `dask scheduler` and workers with "
                         f"`dask worker {scheduler} --nthreads 1`, or correct the address.") from exc
    with client:
        yield DaskExecutor(client, f"the Dask cluster at {scheduler}")
