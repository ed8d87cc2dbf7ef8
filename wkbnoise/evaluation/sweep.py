"""Run a campaign (:class:`~wkbnoise.evaluation.config.SweepConfig`) into a resumable HDF5 run file.

Units of work, each written to the run file as soon as it is finished:

``models/<model>``
    clean and INT-B metric, ``G_l`` (with its standard error, step and linearity check), layer sizes
    and scales.
``theory/<model>/r<i>``
    predictions at rates ``i``: the exact (cost, S) first-order frontier, the measured response ``F``
    (``response_*``: first-order ``S`` of the measured plans, per-draw distortion, cost), ``D_U(m) = F(S_U(m))``
    plus its bias term, ``rho*(m)`` for m = 1..B (through ``F``).
``points/<model>/r<i>/<method>/<budget>``
    per-trial metric and output distortion of one point, its plan, cost and predicted distortion.
``crossings/<model>/r<i>/<method>``
    the smallest budget whose mean metric reaches ``target`` x the INT-B metric (bisection).

Points are keyed by stable ids, ``(model index, method id, budget id, rates index, trial)``, so a run
repeated, resumed or split gives the same numbers.
"""

from __future__ import annotations

import json
import math
import platform
from pathlib import Path

import numpy as np

from ..allocation import METHODS, frontier, plan_cost, plan_for, predicted_distortion, rho_star, uniform_distortion
from ..errors import InputError
from ..sensitivity import bias_distortion, layer_sensitivities
from .campaign import Evaluator
from .config import CROSSING_GRID, SweepConfig, budget_id
from .executor import EvaluatorRecipe, SerialExecutor, TrialRequest
from .store import RunStore

__all__ = ["run_sweep", "versions", "load_inputs", "point_key", "normalized_budget"]


def versions() -> dict:
    """Versions and threading facts recorded in every run file."""
    import h5py
    import numba

    from .. import __version__

    try:
        layer = numba.threading_layer()
    except ValueError:
        layer = "not initialised"
    return {"wkbnoise": __version__, "numpy": np.__version__, "numba": numba.__version__, "h5py": h5py.__version__,
            "python": platform.python_version(), "threads": numba.get_num_threads(), "threading_layer": layer}


def normalized_budget(method: str, bits_per_weight: float, bits: int = 8) -> float:
    """Budgets that give the same plan share a point: none/correct-only at 0, uniform-msp at floor(b)."""
    if method in ("none", "correct-only"):
        return 0.0
    if method == "uniform-msp":
        return float(min(math.floor(bits_per_weight + 1e-9), bits))
    return round(float(bits_per_weight), 4)


def point_key(model: str, i_rate: int, method: str, bits_per_weight: float) -> str:
    """Record name of a campaign point."""
    return f"points/{model}/r{i_rate}/{method}/{bits_per_weight:.4f}"


def load_inputs(config: SweepConfig, model):
    """Test inputs, labels (or None) and unlabeled calibration inputs for ``model``.

    A classifier reads the bundled MNIST test set, or the ``images`` tensor of ``config.inputs`` (labels from
    the ``labels`` tensor of ``config.labels``). An encoder reads the ``input_ids`` / ``attention_mask`` /
    ``token_type_ids`` of ``config.inputs``, or without it the bundled English sentences through its
    folder's own tokenizer; its test sequences calibrate ``G_l`` as well. Every check happens here, before
    any forward pass, with a one-line :class:`~wkbnoise.errors.InputError`.
    """
    from .. import zoo
    from .sources import read_images, read_labels, read_tensors

    if getattr(model, "task", "classifier") == "encoder":
        from ..text import sentence_inputs, token_batch

        if config.labels is not None:
            raise InputError(f"labels={config.labels!r}: this model is an encoder, scored by the cosine similarity "
                             f"of its mean-pooled embedding to the clean INT8 model's; it takes no labels.")
        if config.inputs is None:
            batch = sentence_inputs(model)
        else:
            batch = token_batch(read_tensors(config.inputs, "inputs"), model, source=f"inputs={config.inputs!r}")
        return batch[: config.n_images], None, batch[: config.calibration]
    if config.inputs is None:
        images, labels = zoo.test_set()
        calib = zoo.calibration_images()
        return images[: config.n_images], labels[: config.n_images], calib[: config.calibration]
    x = read_images(config.inputs, model)
    labels = None if config.labels is None else read_labels(config.labels, len(x))
    x = x[: config.n_images]
    labels = None if labels is None else labels[: config.n_images]
    try:
        calib = zoo.calibration_images()[: config.calibration]
        model.preprocess(calib[:1])
    except Exception:  # another input shape: the unlabeled inputs themselves calibrate
        calib = x[: config.calibration]
    return x, labels, calib


def _describe_inputs(config: SweepConfig, images) -> str:
    describe = getattr(images, "describe", None)
    if describe is not None:
        return describe()
    if config.inputs is None:
        return f"the first {len(images)} images of the bundled MNIST test set"
    return f"{len(images)} images of {config.inputs}"


def _load_model(spec):
    from .. import zoo
    from .sources import load_any_model

    return zoo.load(spec.name) if spec.path is None else load_any_model(spec.path)


def run_sweep(config: SweepConfig, out: str | Path, *, progress: bool = True, log=None, loader=None,
              inputs=None, intro: str | None = None, executor=None) -> RunStore:
    """Run (or resume) the campaign ``config`` into the run file ``out``.

    Parameters
    ----------
    config : SweepConfig
    out : path
        HDF5 run file; an existing file of the same configuration is resumed, another one refused.
    progress : bool
        tqdm bars on stderr.
    log : callable, optional
        Called with one-line progress messages.
    loader : callable, optional
        ``loader(model_spec) -> model``; default: the zoo by name, or ``load_model(spec.path)``.
    inputs : callable, optional
        ``inputs(config, model) -> (images, labels or None, calibration images)``; default :func:`load_inputs`.
        With a Dask ``executor`` both must be module-level functions (workers import them).
    executor : optional
        Where the trials run (:func:`wkbnoise.evaluation.executor.open_executor`); default: in this process.
        Only this process writes ``out``, and the numbers do not depend on the executor.

    Returns
    -------
    RunStore
        The finished run (every record in memory).
    """
    store = RunStore(out, config.to_json(), versions())
    say = log or (lambda msg: None)
    executor = executor or SerialExecutor()
    for i_model, spec in enumerate(config.models):
        recipe = EvaluatorRecipe.of(config, i_model, loader or _load_model, inputs or load_inputs)
        model = recipe.loader(spec)
        images, labels, calib = recipe.inputs(config, model)
        if intro and i_model == 0:  # after the first model and its inputs are checked: a mistake prints one line
            say(intro)
        if i_model == 0 and not isinstance(executor, SerialExecutor):
            say(f"trials run {executor.describe()}")
        ev = Evaluator(model, images, labels, bits=config.bits, metric=config.metric)
        x_cal = model.preprocess(calib) if getattr(calib, "dtype", None) == np.uint8 else calib
        base = ev.int8_weights
        mkey = f"models/{spec.name}"
        if mkey not in store:
            say(f"{spec.name}: sensitivities G_l on {len(x_cal)} unlabeled calibration images")
            sens = layer_sensitivities(model, x_cal, base_weights=base, draws=config.draws, seed=config.seed,
                                       progress=progress)
            store.put(mkey, {"arch": getattr(model, "arch", ""), "metric": ev.metric, "clean": ev.clean_score,
                             "int8": ev.int8_score, "layer_names": ev.names, "n_images": len(images),
                             "n_calibration": len(x_cal), "metric_reason": ev.metric_reason,
                             "goal": ev.goal(config.target), "inputs": _describe_inputs(config, images)},
                      {"G": sens.G, "G_se": sens.G_se, "tau": sens.tau, "linearity": sens.linearity,
                       "n_weights": np.array([ev.quantized[n].codes.size for n in ev.names], dtype=np.int64),
                       "scale": np.array([ev.scale(n) for n in ev.names])})
        attrs, data = store.get(mkey)
        G = dict(zip(ev.names, data["G"].tolist(), strict=True))
        for i_rate, rspec in enumerate(spec.rates):
            rates = rspec.rates()
            stats = ev.layer_stats(rates, G)
            try:
                front = frontier(stats)
            except InputError:
                front = None
            tkey = f"theory/{spec.name}/r{i_rate}"
            if tkey not in store:
                store.put(tkey, *_theory_record(ev, model, x_cal, rates, stats, front, rspec.label, config.seed))
            ctx = _Context(config, store, ev, stats, front, spec.name, i_model, i_rate, rates,
                           (executor, recipe))
            grid = [(m, normalized_budget(m, b, config.bits)) for m in config.methods for b in config.budgets]
            grid = list(dict.fromkeys(grid))
            say(f"{spec.name} {rspec.label}: {len(grid)} grid points x {config.trials} trials")
            bar = _bar(len(grid), f"{spec.name} {rspec.label}", progress)
            ctx.points(grid, bar)
            bar.close()
            for method in config.crossing:
                ctx.crossing(method)
    store.close()
    return store


def _bar(total, desc, progress):
    if not progress:
        class _Null:
            def update(self, n):
                pass

            def close(self):
                pass

        return _Null()
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="point", leave=False)


def _theory_record(ev, model, x_cal, rates, stats, front, label, seed=0):
    from ..distortion import fit_response

    bits = ev.bits
    # the distortion model D = F(S): F measured with real flips on the calibration inputs at these rates
    response = fit_response(model, x_cal, ev.quantized, stats, seed=seed)
    d_u, bias_u, rho = [], [], []
    for m in range(bits + 1):
        plan = {n: m for n in ev.names}
        bias = bias_distortion(model, x_cal, ev.expected_weights(rates, plan), base_weights=ev.int8_weights) if m < bits else 0.0
        bias_u.append(bias)
        d_u.append(float(response(uniform_distortion(stats, m))) + bias)
        r = rho_star(stats, m, bias, front=front, response=response) if m > 0 else {"rho": float("nan"), "c_tac": None}
        rho.append(r["rho"])
    data = {"d_uniform": np.array(d_u), "bias_uniform": np.array(bias_u), "rho_star": np.array(rho),
            "d_none_predicted": np.array([response(predicted_distortion(stats))]),
            "d_none_first_order": np.array([predicted_distortion(stats)]), **response.as_arrays()}
    if front is not None:
        data["frontier_cost"] = front[0]
        data["frontier_distortion"] = front[1]
    return {"label": label, "p_down": rates.p_down.tolist(), "p_up": rates.p_up.tolist(),
            "exact_frontier": front is not None}, data


class _Context:
    """One (model, rates) slice of a campaign: evaluates and records points and crossings."""

    def __init__(self, config, store, ev, stats, front, model, i_model, i_rate, rates, runner):
        self.config, self.store, self.ev, self.stats, self.front = config, store, ev, stats, front
        self.model, self.i_model, self.i_rate, self.rates = model, i_model, i_rate, rates
        self.executor, self.recipe = runner
        self.n_total = sum(s.n_weights for s in stats)

    def points(self, grid, bar=None) -> None:
        """Evaluate the points ``(method, budget)`` not yet in the run file; record each as it finishes."""
        todo = []
        for method, b in grid:
            key = point_key(self.model, self.i_rate, method, b)
            if key in self.store or any(t[0] == key for t in todo):
                if bar is not None:
                    bar.update(1)
                continue
            plan = plan_for(method, self.stats, b, seed=self.config.seed, front=self.front)
            ids = (self.i_model, METHODS.index(method), budget_id(b), self.i_rate)
            req = TrialRequest.of(self.rates, method, plan, ids, self.config.seed, self.config.trials,
                                  code=self.config.extra.get("code", "ideal"))
            todo.append((key, method, b, plan, req))
        for i, res in self.executor.trials(self.recipe, self.ev, [t[4] for t in todo]):
            key, method, b, plan, _ = todo[i]
            self.store.put(key, {"model": self.model, "method": method, "budget": b, "rates": self.i_rate,
                                 "plan": json.dumps(plan), "cost_bits": plan_cost(self.stats, plan),
                                 "predicted_distortion": predicted_distortion(self.stats, plan)
                                 if method not in ("none", "uniform-msp") else float("nan")},
                           {"accuracy": res.accuracy, "distortion": res.distortion})
            if bar is not None:
                bar.update(1)

    def point(self, method: str, b: float) -> float:
        """Mean metric of a point, evaluated and recorded unless already in the run file."""
        self.points([(method, b)])
        return float(np.mean(self.store.get(point_key(self.model, self.i_rate, method, b))[1]["accuracy"]))

    def crossing(self, method: str) -> None:
        """Bisection for the smallest budget whose mean metric reaches ``target`` x the INT-B metric."""
        key = f"crossings/{self.model}/r{self.i_rate}/{method}"
        if key in self.store:
            return
        goal = self.ev.goal(self.config.target)
        if method == "uniform-msp":
            cands = [float(m) for m in range(self.config.bits + 1)]
        else:
            cands = [b for b in CROSSING_GRID if b <= self.config.bits]
        trail = []

        def ok(i):
            b = normalized_budget(method, cands[i], self.config.bits)
            mean = self.point(method, b)
            trail.append((b, mean))
            return mean >= goal

        lo, hi = 0, len(cands) - 1
        if not ok(hi):
            found = None
        elif ok(lo):
            found = lo
        else:
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if ok(mid):
                    hi = mid
                else:
                    lo = mid
            found = hi
        if found is None:
            attrs = {"reached": False, "budget": float("nan"), "cost_bits": -1}
        else:
            b = normalized_budget(method, cands[found], self.config.bits)
            pkey = point_key(self.model, self.i_rate, method, b)
            attrs = {"reached": True, "budget": b, "cost_bits": int(self.store.get(pkey)[0]["cost_bits"])}
        attrs.update({"method": method, "goal": goal, "n_weights": self.n_total})
        self.store.put(key, attrs, {"trail": np.array(trail, dtype=np.float64).reshape(-1, 2)})
