"""Where a campaign's trials run: in this process (the default) or on a Dask cluster.

A campaign point's trials are independent: trial ``t`` of a point draws its faults from
``derive_keys(seed, (*point, t), n_layers)`` and nothing else (:meth:`Evaluator.run
<wkbnoise.evaluation.campaign.Evaluator.run>`), so the trials of a point can be cut into blocks and run in
any order, on any process, with the same numbers as one serial run.

An executor takes a list of :class:`TrialRequest` (trials ``start .. stop - 1`` of one point) and yields
each request's :class:`~wkbnoise.evaluation.campaign.TrialResult` as soon as it is finished. It never
writes the run file: the caller (the client) records each result, so a campaign resumes as usual when a
worker dies (Dask runs its blocks again elsewhere) or when the client itself is killed.

- :class:`SerialExecutor` runs the requests one after the other on the caller's
  :class:`~wkbnoise.evaluation.campaign.Evaluator`.
- :class:`~wkbnoise.evaluation._dask.DaskExecutor` (optional extra ``wkbnoise[dask]``) sends blocks of
  trials to ``dask.distributed`` workers. A task carries only the request and an
  :class:`EvaluatorRecipe` (the campaign's configuration as JSON and how to load the model and its
  inputs); each worker builds the Evaluator once and keeps it for the following tasks.

:func:`open_executor` turns the command-line choices (``--workers N``, ``--scheduler tcp://HOST:PORT``)
into an executor and closes what it started.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from .campaign import Evaluator, TrialResult

__all__ = ["TrialRequest", "EvaluatorRecipe", "SerialExecutor", "open_executor", "check_scheduler_address",
           "check_executor_args",
           "split_blocks", "join_blocks"]

_ADDRESS = re.compile(r"^(tcp|tls)://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$")


@dataclass(frozen=True)
class TrialRequest:
    """Trials ``start .. stop - 1`` of one campaign point.

    Attributes
    ----------
    rates : FlipRates or dict of str to FlipRates
        Raw flip rates of the point [per bit].
    method : str
        Method of :data:`wkbnoise.allocation.METHODS`.
    plan : tuple of (str, int)
        Protected top planes per layer, as sorted ``(layer, planes)`` pairs.
    point : tuple of int
        The point's stable ids, prepended to the trial index in the fault keys.
    seed : int
        The campaign's root seed.
    start, stop : int
        First trial and one past the last.
    code : str
        How protected planes are stored: ``"ideal"`` or a real code (see :meth:`Evaluator.run
        <wkbnoise.evaluation.campaign.Evaluator.run>`).
    """

    rates: object
    method: str
    plan: tuple
    point: tuple
    seed: int
    start: int
    stop: int
    code: str = "ideal"

    @classmethod
    def of(cls, rates, method: str, plan: Mapping[str, int] | None, point: tuple, seed: int, trials: int,
           start: int = 0, code: str = "ideal") -> TrialRequest:
        """A request for ``trials`` trials from ``start`` (``plan`` as a dict)."""
        return cls(rates, method, tuple(sorted((str(k), int(v)) for k, v in (plan or {}).items())),
                   tuple(int(i) for i in point), int(seed), int(start), int(start) + int(trials), str(code))

    @property
    def trials(self) -> int:
        """Number of trials."""
        return self.stop - self.start

    def block(self, start: int, stop: int) -> TrialRequest:
        """The same point, trials ``start .. stop - 1``."""
        return dataclasses.replace(self, start=int(start), stop=int(stop))

    def run(self, ev: Evaluator) -> TrialResult:
        """Run the request on an Evaluator."""
        return ev.run(self.rates, method=self.method, plan=dict(self.plan), trials=self.trials,
                      seed=self.seed, point=self.point, start=self.start, code=self.code)


@dataclass(frozen=True)
class EvaluatorRecipe:
    """How to build the Evaluator of one model of a campaign anywhere: small, picklable.

    Attributes
    ----------
    config : str
        The campaign's :class:`~wkbnoise.evaluation.config.SweepConfig` as JSON.
    i_model : int
        Index of the model in ``config.models``.
    loader : callable
        ``loader(model_spec) -> model``; a module-level function, so that workers can import it.
    inputs : callable
        ``inputs(config, model) -> (images, labels or None, calibration images)``.
    """

    config: str
    i_model: int
    loader: Callable
    inputs: Callable

    @classmethod
    def of(cls, config, i_model: int, loader: Callable, inputs: Callable) -> EvaluatorRecipe:
        """The recipe of model ``i_model`` of ``config``, its file paths made absolute (workers run in other
        folders; the run file keeps the configuration as given)."""
        from .config import ModelSpec

        def absolute(path):
            return None if path is None else str(Path(path).resolve())

        models = tuple(ModelSpec(m.name, m.rates, absolute(m.path)) for m in config.models)
        config = dataclasses.replace(config, models=models, inputs=absolute(config.inputs),
                                     labels=absolute(config.labels))
        return cls(config.to_json(), int(i_model), loader, inputs)

    def build(self) -> Evaluator:
        """Load the model and its inputs and build its Evaluator, as the campaign's client does."""
        from .config import SweepConfig

        config = SweepConfig.from_json(self.config)
        model = self.loader(config.models[self.i_model])
        images, labels, _ = self.inputs(config, model)
        return Evaluator(model, images, labels, bits=config.bits, metric=config.metric)


def split_blocks(requests: list[TrialRequest], slots: int) -> list[tuple[int, TrialRequest]]:
    """Cut requests into blocks of consecutive trials so that ``slots`` workers all have work.

    Each request is cut into ``ceil(2 slots / len(requests))`` near-equal blocks (at most one per trial), so
    a single point runs on every worker and a long list of points goes one point per task.

    Returns
    -------
    list of (int, TrialRequest)
        ``(index of the request, block)``, blocks of a request in trial order.
    """
    per = max(1, -(-2 * max(int(slots), 1) // max(len(requests), 1)))
    out = []
    for i, req in enumerate(requests):
        n = min(per, req.trials)
        edges = [req.start + (k * req.trials) // n for k in range(n + 1)]
        out.extend((i, req.block(a, b)) for a, b in zip(edges[:-1], edges[1:], strict=True))
    return out


def join_blocks(parts: list[TrialResult]) -> TrialResult:
    """One TrialResult from the results of consecutive blocks, in trial order (every per-trial field; a
    field that no block has stays None)."""
    def join(name):
        got = [getattr(p, name) for p in parts]
        return None if all(g is None for g in got) else np.concatenate(got)

    return TrialResult(**{f.name: join(f.name) for f in dataclasses.fields(TrialResult)})


def fingerprint(ev: Evaluator) -> tuple:
    """What a worker's Evaluator must share with the client's: layer names, clean and INT-B metric."""
    return (tuple(ev.names), float(ev.clean_score), float(ev.int8_score))


class SerialExecutor:
    """Runs every request in this process, one after the other, on the caller's Evaluator."""

    workers = 1

    def trials(self, recipe: EvaluatorRecipe | None, ev: Evaluator,
               requests: Iterable[TrialRequest]) -> Iterator[tuple[int, TrialResult]]:
        """Yield ``(index of the request, its TrialResult)``, in order.

        Parameters
        ----------
        recipe : EvaluatorRecipe or None
            Unused here (the trials run on ``ev``).
        ev : Evaluator
            The caller's Evaluator of the model.
        requests : iterable of TrialRequest
        """
        for i, req in enumerate(requests):
            yield i, req.run(ev)

    def describe(self) -> str:
        """One line for the log."""
        return "in this process"


def check_scheduler_address(address) -> str:
    """Check a Dask scheduler address ``tcp://HOST:PORT`` (or ``tls://``) and return it."""
    text = str(address).strip() if isinstance(address, str) else None
    m = _ADDRESS.match(text) if text else None
    if m is None or not 1 <= int(m.group(3)) <= 65535:
        raise InputError(f"--scheduler={address!r} is not a Dask scheduler address: write tcp://HOST:PORT, "
                         "e.g. tcp://10.0.0.5:8786 (what `dask scheduler` prints).")
    return text


def check_executor_args(workers=None, scheduler=None) -> tuple[int | None, str | None]:
    """Check ``--workers`` / ``--scheduler`` before any work, and that Dask is installed when needed.

    Returns
    -------
    (int or None, str or None)
        The worker count and the scheduler address.

    Raises
    ------
    InputError
        Both given, ``workers`` not an integer >= 1, a malformed address, or Dask not installed.
    """
    if workers is not None and scheduler is not None:
        raise InputError("give either --workers (a local cluster) or --scheduler (a running one), not both.")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise InputError(f"--workers={workers!r} must be an integer >= 1 (local worker processes).")
    if scheduler is not None:
        scheduler = check_scheduler_address(scheduler)
    if (workers is not None or scheduler is not None) and importlib.util.find_spec("distributed") is None:
        raise _no_dask(workers)
    return workers, scheduler


def _no_dask(workers, reason: str = "not installed") -> InputError:
    flag = "--workers" if workers is not None else "--scheduler"
    return InputError(f"{flag} runs the trials on Dask, which is {reason}: install wkbnoise[dask] "
                      "(pip install 'wkbnoise[dask]').")


@contextlib.contextmanager
def open_executor(workers: int | None = None, scheduler: str | None = None, *,
                  connect_timeout_s: float = 10.0) -> Iterator[SerialExecutor]:
    """The executor for ``--workers`` / ``--scheduler``; closes the cluster it started on exit.

    Parameters
    ----------
    workers : int, optional
        Start a local Dask cluster of this many worker processes (one thread each, one Numba and BLAS
        thread each), >= 1.
    scheduler : str, optional
        Address ``tcp://HOST:PORT`` of a running Dask scheduler whose workers run the trials.
    connect_timeout_s : float
        How long to wait for the scheduler to answer [s].

    Yields
    ------
    SerialExecutor or DaskExecutor
        Serial when neither is given.

    Raises
    ------
    InputError
        See :func:`check_executor_args`; also an unreachable scheduler.
    """
    workers, scheduler = check_executor_args(workers, scheduler)
    if workers is None and scheduler is None:
        yield SerialExecutor()
        return
    try:
        from . import _dask
    except ImportError as exc:
        raise _no_dask(workers, f"not importable ({exc})") from exc
    with _dask.connect(workers, scheduler, connect_timeout_s) as ex:
        yield ex
