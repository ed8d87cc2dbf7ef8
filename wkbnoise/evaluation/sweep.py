"""Run a campaign (:class:`~wkbnoise.evaluation.config.SweepConfig`) into a resumable HDF5 run file.

Units of work, each written to the run file as soon as it is finished:

``models/<model>``
    clean and INT-B metric, the image sample (its label histogram), ``G_l`` (with its standard error,
    step and linearity check), layer sizes and scales.
``theory/<model>/r<i>``
    predictions at rates ``i``: TAC's first-order (cost, S) path, the measured response ``F``
    (``response_*``: first-order ``S`` of the measured plans, per-draw distortion, cost), ``D_U(m) = F(S_U(m))``
    plus its bias term, ``rho*(m)`` for m = 1..B (through ``F``).
``paths/<model>/r<i>/<method>``
    the cost of every plan on the method's nested path.
``points/<model>/r<i>/<method>/k<step>``
    per-trial metric, output distortion and failed inferences of one plan of the path, its cost and
    predicted distortion. A point judged by the crossing search may hold more trials than the grid's.
``crossings/<model>/r<i>/<method>``
    the smallest budget on the path judged above ``target`` x the INT-B metric, its bracket and every
    judged point (:mod:`~wkbnoise.evaluation.crossing`).

Points are keyed by stable ids, ``(model index, method id, path step, rates index, trial)``, so a run
repeated, resumed, split or extended with more trials gives the same numbers.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path

import numpy as np

from ..allocation import (
    METHODS, budget_bits, budget_path, greedy_path, predicted_distortion, rho_star, uniform_distortion,
)
from ..errors import InputError, ModelFileError, StoreError
from ..parallel import map_chunks, serial_blas
from ..sensitivity import bias_distortion, layer_sensitivities, model_outputs
from .campaign import Evaluator, nonfinite_parameter
from .config import SweepConfig
from .crossing import find_crossing
from .executor import EvaluatorRecipe, SerialExecutor, TrialRequest
from .sampling import label_histogram, sample_indices
from .store import RunStore

__all__ = ["run_sweep", "versions", "load_inputs", "point_key", "path_key", "VERDICT_CODE"]


#: what a finished record of each kind must hold (checked when a run file is resumed)
RECORD_FIELDS = {"models/": ("G", "n_weights", "scale", "clean", "int8", "metric"),
                 "theory/": ("rho_star", "d_uniform"),
                 "points/": ("accuracy", "distortion", "plan", "cost_bits"),
                 "crossings/": ("reached", "budget", "cost_bits")}


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


def point_key(model: str, i_rate: int, method: str, step: int) -> str:
    """Record name of a campaign point: step ``step`` of ``method``'s nested path."""
    return f"points/{model}/r{i_rate}/{method}/k{int(step):05d}"


def path_key(model: str, i_rate: int, method: str) -> str:
    """Record name of a method's path (the cost of each of its plans)."""
    return f"paths/{model}/r{i_rate}/{method}"


def encoder_sequences(config: SweepConfig, model):
    """Every token sequence a campaign of a token model (an encoder or a text classifier) may sample: the ``input_ids`` / ``attention_mask`` /
    ``token_type_ids`` of ``config.inputs``, or the bundled English sentences through the model folder's own
    tokenizer (a :class:`~wkbnoise.text.TokenBatch`)."""
    from ..text import sentence_inputs, token_batch
    from .sources import read_tensors

    if config.labels is not None and getattr(model, "task", "classifier") == "encoder":
        raise InputError(f"labels={config.labels!r}: this model is an encoder, scored by the cosine similarity "
                         f"of its mean-pooled embedding to the clean INT8 model's; it takes no labels.")
    if config.inputs is None:
        return sentence_inputs(model)
    return token_batch(read_tensors(config.inputs, "inputs"), model, source=f"inputs={config.inputs!r}")


def load_inputs(config: SweepConfig, model):
    """Test inputs, labels (or None) and unlabeled calibration inputs for ``model``.

    A classifier reads a seeded random sample of ``config.n_images`` images of the bundled MNIST test set, or
    of the ``images`` tensor of ``config.inputs`` (labels from the ``labels`` tensor of ``config.labels``),
    stratified by label where there are labels (:func:`~wkbnoise.evaluation.sampling.sample_indices`); asking
    for more images than the bundled set holds is refused, a user file with fewer is used whole. Its calibration inputs are a seeded random sample of the
    training split's images (of the user's inputs when the model reads another input shape). An encoder
    reads a seeded random sample of ``config.n_images`` sequences of :func:`encoder_sequences` (all of them
    when there are fewer), and calibrates ``G_l`` on another seeded sample of the same sequences (all of them
    when there are fewer than ``config.calibration``). Every check happens here, before any forward pass, with a one-line
    :class:`~wkbnoise.errors.InputError`.
    """
    from .. import zoo
    from .inputs import check_images
    from .sources import read_images, read_labels

    if getattr(model, "task", "classifier") == "encoder" or getattr(model, "tokens", False):
        batch = encoder_sequences(config, model)
        where = "the bundled English sentences" if config.inputs is None else f"inputs={config.inputs!r}"
        labels = None if config.labels is None else read_labels(config.labels, len(batch))
        # as for a user's image file: fewer sequences than the protocol's count are used whole (the run records
        # how many it read; the CLI refuses an explicit --images beyond them before any work)
        idx = sample_indices(len(batch), min(config.n_images, len(batch)), labels=labels, seed=config.seed,
                             source=where)
        cidx = sample_indices(len(batch), min(config.calibration, len(batch)), seed=config.seed,
                              what="calibration", source=where)
        return batch[idx], None if labels is None else labels[idx], batch[cidx]
    if config.inputs is None:
        images, labels = zoo.test_set()
        idx = sample_indices(len(images), config.n_images, labels=labels, seed=config.seed,
                             source="the bundled test set")
        calib = zoo.calibration_images()
        cidx = sample_indices(len(calib), config.calibration, seed=config.seed, what="calibration",
                              source="the bundled calibration set")
        return images[idx], labels[idx], calib[cidx]
    x_all = check_images(read_images(config.inputs, model), where=f"--inputs={config.inputs!r}")
    labels = None if config.labels is None else read_labels(config.labels, len(x_all))
    # a user file smaller than the protocol's count is used whole (the run records how many inputs it read;
    # the CLI refuses an explicit --images beyond the file before any work)
    idx = sample_indices(len(x_all), min(config.n_images, len(x_all)), labels=labels, seed=config.seed,
                         source=f"inputs={config.inputs!r}")
    x = x_all[idx]
    labels = None if labels is None else labels[idx]
    try:
        calib = zoo.calibration_images()
        model.preprocess(calib[:1])
        calib = calib[sample_indices(len(calib), config.calibration, seed=config.seed, what="calibration",
                                     source="the bundled calibration set")]
    except Exception:  # another input shape: the unlabeled inputs themselves calibrate
        n = min(config.calibration, len(x_all))
        calib = x_all[sample_indices(len(x_all), n, seed=config.seed, what="calibration")]
    return x, labels, calib


def _describe_inputs(config: SweepConfig, images, labels=None) -> str:
    describe = getattr(images, "describe", None)
    if describe is not None:
        return describe()
    how = f"a seeded random sample (seed {config.seed}){', stratified by label,' if labels is not None else ''}"
    if config.inputs is None:
        return f"{len(images)} images, {how} of the bundled MNIST test set"
    return f"{len(images)} images, {how} of {config.inputs}"


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
    store.check(RECORD_FIELDS)
    say = log or (lambda msg: None)
    executor = executor or SerialExecutor()
    for i_model, spec in enumerate(config.models):
        recipe = EvaluatorRecipe.of(config, i_model, loader or _load_model, inputs or load_inputs)
        model = recipe.loader(spec)
        bad = nonfinite_parameter(model)
        if bad is not None:
            raise ModelFileError(f"model {spec.name!r}: {bad}; its outputs would not be finite. Fix the weights.")
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
                             "goal": ev.goal(config.target), "inputs": _describe_inputs(config, images, labels),
                             "label_histogram": json.dumps(label_histogram(labels)),
                             "sample": f"seeded random sample (seed {config.seed})"
                                       + (", stratified by label" if labels is not None else "")},
                      {"G": sens.G, "G_se": sens.G_se, "tau": sens.tau, "linearity": sens.linearity,
                       "n_weights": np.array([ev.quantized[n].codes.size for n in ev.names], dtype=np.int64),
                       "scale": np.array([ev.scale(n) for n in ev.names])})
        attrs, data = store.require(mkey, "G")
        if np.shape(data["G"]) != (len(ev.names),) or not np.all(np.isfinite(data["G"])):
            raise StoreError(f"run file {str(out)!r}: record {mkey!r} holds G of shape {np.shape(data['G'])} for "
                             f"{len(ev.names)} layers, or non-finite values: it is damaged. Delete it (and its "
                             f".journal) to start the run again, or give another --out path.")
        G = dict(zip(ev.names, data["G"].tolist(), strict=True))
        for i_rate, rspec in enumerate(spec.rates):
            rates = rspec.rates()
            stats = ev.layer_stats(rates, G)
            tkey = f"theory/{spec.name}/r{i_rate}"
            if tkey not in store:
                store.put(tkey, *_theory_record(ev, model, x_cal, rates, stats, rspec.label, config.seed))
            ctx = _Context(config, store, ev, stats, spec.name, i_model, i_rate, rates, (executor, recipe))
            grid = list(dict.fromkeys((m, ctx.grid_index(m, b)) for m in config.methods for b in config.budgets))
            say(f"{spec.name} {rspec.label}: {len(grid)} grid points x {config.trials} trials")
            bar = _bar(len(grid), f"{spec.name} {rspec.label}", progress)
            ctx.measure_many([(m, k, config.trials) for m, k in grid], bar)
            bar.close()
            for method in config.crossing:
                say(f"{spec.name} {rspec.label}: 95 % crossing of {method}")
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


def _theory_record(ev, model, x_cal, rates, stats, label, seed=0):
    from ..distortion import fit_response

    bits = ev.bits
    # the distortion model D = F(S): F measured with real flips on the calibration inputs at these rates
    response = fit_response(model, x_cal, ev.quantized, stats, seed=seed)
    with serial_blas():
        z_ref = model_outputs(model, x_cal, ev.int8_weights)
    # the bias of every uniform plan: independent forward passes, side by side, the same sums as in turn
    biases = map_chunks(lambda m, slot: bias_distortion(model, x_cal, ev.expected_weights(rates, {n: m for n in ev.names}),
                                                        base_weights=ev.int8_weights, z_ref=z_ref),
                        bits)
    d_u, bias_u, rho = [], [], []
    for m in range(bits + 1):
        bias = biases[m] if m < bits else 0.0
        bias_u.append(bias)
        d_u.append(float(response(uniform_distortion(stats, m))) + bias)
        r = rho_star(stats, m, bias, response=response) if m > 0 else {"rho": float("nan"), "c_tac": None}
        rho.append(r["rho"])
    cost, dist = greedy_path(stats)
    data = {"d_uniform": np.array(d_u), "bias_uniform": np.array(bias_u), "rho_star": np.array(rho),
            "d_none_predicted": np.array([response(predicted_distortion(stats))]),
            "d_none_first_order": np.array([predicted_distortion(stats)]), "tac_path_cost": cost,
            "tac_path_distortion": dist, **response.as_arrays()}
    return {"label": label, "p_down": rates.p_down.tolist(), "p_up": rates.p_up.tolist()}, data


#: crossing verdicts as stored numbers
VERDICT_CODE = {"below": -1, "undecided": 0, "above": 1}


class _Context:
    """One (model, rates) slice of a campaign: evaluates and records points and crossings."""

    def __init__(self, config, store, ev, stats, model, i_model, i_rate, rates, runner):
        self.config, self.store, self.ev, self.stats = config, store, ev, stats
        self.model, self.i_model, self.i_rate, self.rates = model, i_model, i_rate, rates
        self.executor, self.recipe = runner
        self.n_total = sum(s.n_weights for s in stats)
        self._paths = {}

    def path(self, method: str):
        """The method's nested path (recorded once as ``paths/<model>/r<i>/<method>``)."""
        if method not in self._paths:
            path = budget_path(method, self.stats, seed=self.config.seed)
            key = path_key(self.model, self.i_rate, method)
            if key not in self.store:
                self.store.put(key, {"method": method, "n_weights": self.n_total}, {"cost_bits": path.costs})
            self._paths[method] = path
        return self._paths[method]

    def grid_index(self, method: str, b: float) -> int:
        """Path index of the plan of ``method`` at ``b`` bits per weight (longest prefix that fits)."""
        return self.path(method).index(budget_bits(self.stats, b))

    def measure_many(self, wants, bar=None) -> None:
        """Bring each point ``(method, k, trials)`` to at least ``trials`` trials (one batch for the executor)."""
        todo = []
        for method, k, trials in wants:
            key = point_key(self.model, self.i_rate, method, k)
            have = self.store.get(key) if key in self.store else None
            n_have = 0 if have is None else have[1]["accuracy"].size
            if n_have >= trials or any(t[0] == key for t in todo):
                if bar is not None:
                    bar.update(1)
                continue
            ids = (self.i_model, METHODS.index(method), int(k), self.i_rate)
            req = TrialRequest.of(self.rates, method, self.path(method).plan(k), ids, self.config.seed,
                                  int(trials) - n_have, start=n_have, code=self.config.extra.get("code", "ideal"))
            todo.append((key, method, k, have, req))
        for i, res in self.executor.trials(self.recipe, self.ev, [t[4] for t in todo]):
            key, method, k, have, _ = todo[i]
            failed = res.failed if res.failed is not None else np.zeros(res.accuracy.size, dtype=np.int64)
            data = {"accuracy": res.accuracy, "distortion": res.distortion, "failed": failed}
            if have is not None:
                data = {name: np.concatenate([have[1][name], v]) if name in have[1] else v
                        for name, v in data.items()}
            plan = self.path(method).plan(k)
            cost = int(self.path(method).costs[k])
            self.store.put(key, {"model": self.model, "method": method, "step": int(k),
                                 "budget": cost / self.n_total, "rates": self.i_rate, "plan": json.dumps(plan),
                                 "cost_bits": cost, "predicted_distortion": predicted_distortion(self.stats, plan)
                                 if method not in ("none", "uniform-msp") else float("nan")}, data)
            if bar is not None:
                bar.update(1)

    def measure(self, method: str, k: int, trials: int) -> np.ndarray:
        """Trial values of point ``k`` of ``method``'s path, extended to at least ``trials`` trials."""
        self.measure_many([(method, k, trials)])
        return self.store.get(point_key(self.model, self.i_rate, method, k))[1]["accuracy"]

    def crossing(self, method: str) -> None:
        """The sequential 95 % crossing of ``method`` on its path (:func:`~.crossing.find_crossing`)."""
        key = f"crossings/{self.model}/r{self.i_rate}/{method}"
        if key in self.store:
            return
        goal = self.ev.goal(self.config.target)
        path = self.path(method)
        prefix = f"points/{self.model}/r{self.i_rate}/{method}/"
        measured = [int(_num(self.store.get(k)[0]["step"])) for k in self.store.keys(prefix)]
        bounds = (-1.0, 1.0) if self.ev.metric == "cosine" else (0.0, 1.0)
        res = find_crossing(lambda k, n: self.measure(method, k, n), len(path), goal, start=self.config.trials,
                            cap=self.config.max_trials, measured=measured, bounds=bounds)

        def budget(k):
            return float("nan") if k is None else float(path.costs[k]) / self.n_total

        attrs = {"method": method, "goal": goal, "n_weights": self.n_total, "reached": res.c is not None,
                 "step": -1 if res.c is None else res.c, "budget": budget(res.c),
                 "cost_bits": -1 if res.c is None else int(path.costs[res.c]),
                 "bracket_step": -1 if res.bracket is None else res.bracket, "bracket_budget": budget(res.bracket),
                 "trials_at_c": -1 if res.c is None else res.points[res.c].trials, "cap": self.config.max_trials,
                 "undecided": [budget(k) for k in res.undecided],
                 "non_monotone": [budget(k) for k in res.non_monotone], "path_points": len(path)}
        trail = np.array([[p.k, budget(p.k), p.mean, p.lo, p.hi, p.trials, VERDICT_CODE[p.verdict]]
                          for p in sorted(res.points.values(), key=lambda p: p.k)], dtype=np.float64).reshape(-1, 7)
        self.store.put(key, attrs, {"trail": trail})


def _num(v) -> float:
    if isinstance(v, bytes):
        v = v.decode()
    return float(v)
