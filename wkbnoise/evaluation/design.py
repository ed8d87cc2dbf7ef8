"""``python -m wkbnoise design``: from oxide and retention time to the cheapest protection that keeps the target.

For each oxide thickness the physics gives the cell's per-bit flip rates after the storage time
(:func:`wkbnoise.physics.memory_flip_rates`: asymmetric, as the cell stores charge). For each code, two
protections are searched:

``tac``
    The TAC plans (per-layer protected top planes, chosen by predicted distortion) along the budget grid
    ``0`` and ``8 * 2^(-j/8)`` protected data bits per weight;
``uniform-msp``
    the same top ``m`` planes in every layer, ``m = 0..8``.

The answer is the cheapest plan judged above ``target`` times the clean INT8 metric: trials are added to a
plan until the 95 % interval of its mean lies wholly above or below the goal (up to ``max_trials``), and the
plans being nested, the search halves the gap between the cheapest plan judged above and the dearest below
(:func:`wkbnoise.evaluation.crossing.find_crossing`). With a real code every stored bit of
the protected planes' codewords flips and is decoded (:mod:`wkbnoise.codes`); with ``ideal`` the protected
planes never err. Cost: **stored bits per weight** = 8 data bits + the check bits of whole codewords
(``ceil(n_l m_l / k) (n - k)`` per layer) divided by the number of weights; for ``ideal`` the protected
data bits per weight stand in for the check bits (one check bit per protected bit: a reference, not a code).

**Pruning.** Every plan has a predicted output distortion ``D`` (the layers' sensitivities times the
residual variance of their planes, the protected planes at the code's analytic residual rates). Each
Monte Carlo point teaches the search where the target lies in ``D``: ``D*`` is the geometric mean of the
largest ``D`` judged above and the smallest judged below. Plans with ``D > prune * D*`` are left out as
failing and plans with ``D < D* / prune`` as passing (the search runs on the window between), so most of a
sweep spends trials only near the crossing; if nothing in the window is judged above, the search goes on up
to full protection. Every reported plan is measured; a "predicted" row is one where even full protection is
predicted to fail (``D > prune * D*``), and says so.

Everything is written to a resumable HDF5 run file (:class:`~wkbnoise.evaluation.store.RunStore`): the
model record, every Monte Carlo point, and every (thickness, code, method) answer.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..allocation import METHODS, LayerStat, plan_for, predicted_distortion
from ..ecc import get_code, protected_rates
from ..errors import InputError, PhysicsDomainError
from .config import CROSSING_GRID, ModelSpec, SweepConfig, budget_id

__all__ = ["DesignConfig", "run_design", "pareto_front", "thickness_grid", "DEFAULT_CODES", "plot_design"]

DEFAULT_CODES = ("ideal", "secded-72-64", "secded-39-32", "bch-64-t2", "bch-64-t3")
DESIGN_METHODS = ("tac", "uniform-msp")


def thickness_grid(spec: str | float) -> tuple[float, ...]:
    """Thicknesses [nm] from ``"start:stop:step"`` (stop included) or a single number.

    Raises
    ------
    InputError
        For a malformed spec, a non-positive step or thickness, or an empty range.
    """
    text = str(spec).strip()
    try:
        parts = [float(x) for x in text.split(":")]
    except ValueError as exc:
        raise InputError(f"--thickness-nm={spec!r} must be START:STOP:STEP in nm (e.g. 3.5:6.0:0.1) or one "
                         "thickness.") from exc
    if len(parts) == 1:
        parts = [parts[0], parts[0], 1.0]
    if len(parts) != 3 or not all(math.isfinite(x) for x in parts):
        raise InputError(f"--thickness-nm={spec!r} must be START:STOP:STEP in nm (e.g. 3.5:6.0:0.1).")
    start, stop, step = parts
    if step <= 0 or start <= 0:
        raise InputError(f"--thickness-nm={spec!r}: START must be > 0 nm and STEP > 0 nm.")
    n = int(math.floor((stop - start) / step + 1e-9)) + 1
    if n < 1:
        raise InputError(f"--thickness-nm={spec!r} is an empty range (STOP < START): give START <= STOP.")
    if n > 1000:
        raise InputError(f"--thickness-nm={spec!r} gives {n} thicknesses; use at most 1000 (a larger STEP).")
    return tuple(round(start + i * step, 6) for i in range(n))


@dataclass(frozen=True)
class DesignConfig:
    """Everything that determines a design run's numbers (stored in the run file, compared on resume).

    Attributes
    ----------
    model : str
        Zoo model name, or the path of a safetensors weight file.
    material, cell : str
        Oxide (SiO2, Si3N4, HfO2) and memory cell preset (flash, dram).
    years : float
        Storage time without refresh [years], > 0.
    thickness_nm : tuple of float
        Oxide thicknesses [nm].
    codes : tuple of str
        ``ideal`` and real codes (:data:`wkbnoise.codes.REAL_CODES`).
    target : float
        Fraction of the clean INT8 metric to keep, in (0, 1].
    trials, n_images, calibration, draws, seed, bits : int
        Monte Carlo trials of a first look at a point, test images, calibration images and draws for the
        sensitivities, root seed, quantization bits.
    max_trials : int
        Most trials per point: a point whose 95 % interval still straddles the goal gets more trials, up
        to this cap, and otherwise stays undecided.
    prune : float
        Distortion factor of the pruning window (> 1).
    inputs, labels : str or None
        User input/label files (safetensors) instead of the bundled MNIST test set.
    """

    model: str = "lenet5"
    material: str = "SiO2"
    years: float = 10.0
    cell: str = "flash"
    thickness_nm: tuple = field(default_factory=lambda: thickness_grid("3.5:6.0:0.1"))
    codes: tuple = DEFAULT_CODES
    target: float = 0.95
    trials: int = 5
    n_images: int = 200
    calibration: int = 64
    draws: int = 2
    seed: int = 0
    bits: int = 8
    prune: float = 10.0
    max_trials: int = 15
    inputs: str | None = None
    labels: str | None = None

    def __post_init__(self) -> None:
        from ..codes import REAL_CODES

        if not self.codes:
            raise InputError("--codes is empty: give at least one of " + ", ".join(("ideal", *REAL_CODES)) + ".")
        for c in self.codes:
            if c != "ideal" and c not in REAL_CODES:
                raise InputError(f"--codes: {c!r} is not a code design can decode. Use ideal, "
                                 f"{', '.join(REAL_CODES)}.")
        if not (isinstance(self.target, int | float) and 0 < self.target <= 1):
            raise InputError(f"--target={self.target!r} must be a fraction in (0, 1] of the clean INT8 metric "
                             "(e.g. 0.95).")
        if not self.thickness_nm:
            raise InputError("--thickness-nm gives no thickness: use START:STOP:STEP with START <= STOP.")
        if not self.years > 0:
            raise InputError(f"--years={self.years!r} must be > 0.")
        if self.cell not in ("flash", "dram"):
            raise InputError(f"--cell={self.cell!r} must be flash or dram.")
        if self.trials < 2:
            raise InputError(f"--trials={self.trials!r} must be >= 2 (the interval needs two trials).")
        if self.max_trials < self.trials:
            raise InputError(f"--max-trials={self.max_trials!r} must be >= --trials={self.trials!r}.")
        if not self.prune > 1:
            raise InputError(f"prune={self.prune!r} must be > 1.")

    def to_json(self) -> str:
        """Canonical JSON of the configuration."""
        return json.dumps({"design": asdict(self)}, sort_keys=True, separators=(",", ":"))


def _sweep_config(cfg: DesignConfig) -> SweepConfig:
    """The campaign settings the shared input loader reads (images, calibration, inputs)."""
    from .. import zoo

    path = None if cfg.model in zoo.names() and not Path(cfg.model).exists() else cfg.model
    name = cfg.model if path is None else (Path(path).name if Path(path).is_dir() else Path(path).stem)
    return SweepConfig(models=(ModelSpec(name, (), path),), trials=cfg.trials,
                       seed=cfg.seed, bits=cfg.bits, n_images=cfg.n_images, calibration=cfg.calibration,
                       draws=cfg.draws, target=cfg.target, inputs=cfg.inputs, labels=cfg.labels)


class _Search:
    """Monte Carlo points of one model, recorded in the run file, and the pruning threshold ``D*``."""

    def __init__(self, cfg, store, ev):
        self.cfg, self.store, self.ev = cfg, store, ev
        self.goal = ev.goal(cfg.target)
        self.passed_d: list[float] = []
        self.failed_d: list[float] = []
        self.n_mc = 0
        self.n_trials = 0
        self.n_pruned = 0
        self.bounds = (-1.0, 1.0) if ev.metric == "cosine" else (0.0, 1.0)

    def threshold(self) -> float | None:
        if not self.passed_d or not self.failed_d:
            return None
        return math.sqrt(max(max(self.passed_d), 1e-300) * max(min(self.failed_d), 1e-300))

    def trials(self, key: str, rates, plan: dict, code: str, method: str, ids: tuple, d_pred: float,
               n: int) -> dict:
        """The trials of one plan, extended to at least ``n`` (Monte Carlo, or read back from the run file)."""
        have = self.store.get(key) if key in self.store else None
        n_have = 0 if have is None else have[1]["accuracy"].size
        if n_have < n:
            res = self.ev.run(rates, method=method, plan=plan, trials=int(n) - n_have, seed=self.cfg.seed,
                              point=ids, code=code, start=n_have)
            data = {"accuracy": res.accuracy, "distortion": res.distortion}
            if have is not None:
                data = {k: np.concatenate([have[1][k], v]) for k, v in data.items()}
            self.n_mc += n_have == 0
            self.n_trials += int(n) - n_have
            self.store.put(key, {"plan": json.dumps(plan), "predicted_distortion": d_pred}, data)
        return self.store.get(key)[1]

    def crossing(self, cands: list, measure):
        """The cheapest candidate judged above the goal (candidates nested, cost increasing).

        ``cands[i] = (plan, predicted D)``; ``measure(i, n)`` returns the trial values of candidate ``i``
        extended to at least ``n`` trials. Candidates predicted to fail (``D > prune D*``) below the window, and
        predicted to pass (``D < D* / prune``) above it, are left out of the sequential search
        (:func:`~wkbnoise.evaluation.crossing.find_crossing`); if nothing in the window is judged above,
        the search goes on over every candidate up to full protection.

        Returns
        -------
        (index or None, basis, CrossingResult or None, offset)
        """
        from .crossing import find_crossing

        d_star = self.threshold()
        k = self.cfg.prune

        def predicted(i):
            if d_star is None:
                return None
            d = cands[i][1]
            if d > k * d_star:
                return False
            if d < d_star / k:
                return True
            return None

        top = len(cands) - 1
        if predicted(top) is False:
            self.n_pruned += top + 1
            return None, "predicted", None, 0
        lo = 0
        while lo < top and predicted(lo) is False:
            lo += 1
        hi = lo
        while hi < top and predicted(hi) is not True:
            hi += 1
        self.n_pruned += lo + top - hi

        def path(j, n):
            return measure(lo + j, n)

        opts = {"start": self.cfg.trials, "cap": self.cfg.max_trials, "bounds": self.bounds}
        res = find_crossing(path, hi - lo + 1, self.goal, **opts)
        if res.c is None and hi < top:
            res = find_crossing(path, top - lo + 1, self.goal, measured=list(res.points), **opts)
        for j, p in res.points.items():
            if p.verdict == "above":
                self.passed_d.append(cands[lo + j][1])
            elif p.verdict == "below":
                self.failed_d.append(cands[lo + j][1])
        if res.c is None:
            return None, "measured", res, lo
        return lo + res.c, "measured", res, lo


def _code_distortion(stats: list[LayerStat], plan: dict, code: str) -> float:
    """Predicted distortion with the protected planes at the code's analytic residual rates."""
    if code == "ideal":
        return predicted_distortion(stats, plan)
    eff = [LayerStat(s.name, s.n_weights, s.scale, s.sensitivity, protected_rates(s.rates, int(plan.get(s.name, 0)),
                                                                                  code), s.p_one) for s in stats]
    return predicted_distortion(eff, {})


def _overhead_bits(stats: list[LayerStat], plan: dict, code: str) -> tuple[int, int]:
    """(protected data bits, check bits) of a plan: whole codewords per layer; ideal counts no check bits."""
    data = sum(s.n_weights * int(plan.get(s.name, 0)) for s in stats)
    if code == "ideal":
        return data, 0
    c = get_code(code)
    return data, sum(c.check_bits(s.n_weights * int(plan.get(s.name, 0))) for s in stats)


def run_design(cfg: DesignConfig, out, *, log=None, loader=None, inputs=None, progress: bool = False) -> dict:
    """Run (or resume) a design sweep into the run file ``out`` and return its answer.

    Parameters
    ----------
    cfg : DesignConfig
    out : path
        HDF5 run file (resumed when it holds the same configuration, refused otherwise).
    log : callable, optional
        One-line progress messages.
    loader, inputs : callable, optional
        ``loader(model_spec) -> model`` and ``inputs(sweep_config, model) -> (x, labels, calibration)``
        (default: the zoo or the weight file, and the bundled MNIST test set).

    Returns
    -------
    dict
        ``rows`` (one per thickness, code and method), ``frontier`` (Pareto-optimal rows, thickness vs stored
        bits per weight), ``unreached`` (thicknesses where no code reaches the target), the model's clean and
        INT8 metric, the number of Monte Carlo points run and pruned, and the wall time.
    """
    from ..physics import memory_flip_rates
    from ..sensitivity import layer_sensitivities
    from .campaign import Evaluator
    from .store import RunStore
    from .sweep import _load_model, load_inputs, versions

    say = log or (lambda msg: None)
    t0 = time.perf_counter()
    sweep_cfg = _sweep_config(cfg)
    spec = sweep_cfg.models[0]
    model = (loader or _load_model)(spec)
    x, labels, calib = (inputs or load_inputs)(sweep_cfg, model)  # every input check before the run file
    if len(x) < cfg.n_images:  # a file with fewer inputs is never reported as the count asked for
        where = (f"--inputs={cfg.inputs!r}" if cfg.inputs is not None else
                 "the bundled English sentences" if getattr(model, "task", "") == "encoder" else "the bundled test set")
        raise InputError(f"--images={cfg.n_images} but {where} holds {len(x)}; use --images <= {len(x)}.")
    store = RunStore(out, cfg.to_json(), versions())
    ev = Evaluator(model, x, labels, bits=cfg.bits)
    x_cal = model.preprocess(calib) if getattr(calib, "dtype", None) == np.uint8 else calib
    if "design/model" not in store:
        say(f"{spec.name}: sensitivities G_l on {len(x_cal)} unlabeled calibration images")
        sens = layer_sensitivities(model, x_cal, base_weights=ev.int8_weights, draws=cfg.draws, seed=cfg.seed)
        store.put("design/model", {"name": spec.name, "metric": ev.metric, "clean": ev.clean_score,
                                   "int8": ev.int8_score, "layer_names": ev.names},
                  {"G": sens.G, "n_weights": np.array([ev.quantized[n].codes.size for n in ev.names])})
    G = dict(zip(ev.names, store.get("design/model")[1]["G"].tolist(), strict=True))
    search = _Search(cfg, store, ev)
    rows, unreached = [], []
    order = _search_order(len(cfg.thickness_nm))
    for i_t in order:
        t_nm = cfg.thickness_nm[i_t]
        try:
            rates = memory_flip_rates(cfg.material, thickness_nm=t_nm, years=cfg.years, cell=cfg.cell, bits=cfg.bits)
        except PhysicsDomainError:
            rows += [_row(t_nm, None, c, m, None, "out of the rate model (p_down + p_up >= 1)") for c in cfg.codes
                     for m in DESIGN_METHODS]
            continue
        stats = ev.layer_stats(rates, G)
        n_total = sum(s.n_weights for s in stats)
        tac = _nested([plan_for("tac", stats, b) for b in CROSSING_GRID if b <= cfg.bits])
        uni = [{s.name: m for s in stats} for m in range(cfg.bits + 1)]
        for i_c, code in enumerate(cfg.codes):
            for method, plans in (("tac", tac), ("uniform-msp", uni)):
                key = f"design/answers/t{i_t}/{code}/{method}"
                if key not in store:
                    cands = [(p, _code_distortion(stats, p, code)) for p in plans]

                    def measure(i, n, cands=cands, code=code, method=method, i_c=i_c):
                        plan, d = cands[i]
                        cost = sum(s.n_weights * plan.get(s.name, 0) for s in stats)
                        pkey = f"design/points/t{i_t}/{code}/{method}/{cost}"
                        ids = (i_t, i_c, METHODS.index(method), budget_id(cost / n_total))
                        return search.trials(pkey, rates, plan, code, method, ids, d, n)["accuracy"]

                    found, basis, res, offset = search.crossing(cands, measure)
                    attrs = {"reached": found is not None, "basis": basis,
                             "undecided": 0 if res is None else len(res.undecided)}
                    if found is not None:
                        plan, d = cands[found]
                        judged = res.points[found - offset]
                        data_bits, check_bits = _overhead_bits(stats, plan, code)
                        dist = search.trials(f"design/points/t{i_t}/{code}/{method}/{data_bits}", rates, plan, code,
                                             method, (), d, 0)["distortion"]
                        attrs.update({"plan": json.dumps(plan), "predicted_distortion": d, "data_bits": data_bits,
                                      "check_bits": check_bits, "n_weights": n_total, "metric_mean": judged.mean,
                                      "metric_lo": judged.lo, "metric_hi": judged.hi, "trials": judged.trials,
                                      "metric_distortion": float(np.mean(dist)),
                                      "bracket": -1 if res.bracket is None else res.bracket + offset,
                                      "steps_from_bracket": -1 if res.bracket is None else found - offset - res.bracket})
                    attrs.update({"p_down": float(rates.p_down[0]), "p_up": float(rates.p_up[0])})
                    store.put(key, attrs)
                rows.append(_row(t_nm, rates, code, method, store.get(key)[0], None))
        say(f"{t_nm:g} nm: p_down {rates.p_down[0]:.3g}, p_up {rates.p_up[0]:.3g}; "
            f"{search.n_mc} Monte Carlo points so far, {search.n_pruned} pruned")
    store.close()
    rows.sort(key=lambda r: (r["thickness_nm"], cfg.codes.index(r["code"]), r["method"] != "tac"))
    for t_nm in cfg.thickness_nm:
        if not any(r["reached"] for r in rows if r["thickness_nm"] == t_nm):
            unreached.append(t_nm)
    attrs = store.get("design/model")[0]
    return {"model": attrs["name"], "metric": attrs["metric"], "clean": attrs["clean"], "int8": attrs["int8"],
            "goal": search.goal, "config": json.loads(cfg.to_json())["design"], "rows": rows,
            "frontier": pareto_front(rows), "unreached": unreached, "monte_carlo_points": search.n_mc,
            "monte_carlo_trials": search.n_trials,
            "pruned": search.n_pruned, "wall_s": time.perf_counter() - t0}


def _search_order(n: int) -> list[int]:
    """Thickness indices middle first, then halving outwards: the first searches calibrate ``D*`` widely."""
    order, seen = [], set()
    step = max(1, n)
    while step >= 1:
        for i in range(step // 2, n, step):
            if i not in seen:
                order.append(i)
                seen.add(i)
        if step == 1:
            break
        step //= 2
    return order + [i for i in range(n) if i not in seen]


def _nested(plans: list[dict]) -> list[dict]:
    """Distinct plans in order of cost (the TAC plans of increasing budgets)."""
    out = []
    for p in plans:
        if not out or p != out[-1]:
            out.append(p)
    return out


def _row(t_nm, rates, code, method, attrs, why) -> dict:
    row = {"thickness_nm": float(t_nm), "code": code, "method": method,
           "p_down": None if rates is None else float(rates.p_down[0]),
           "p_up": None if rates is None else float(rates.p_up[0]), "reached": False, "basis": why or "",
           "protected_bits_per_weight": None, "check_bits_per_weight": None, "stored_bits_per_weight": None,
           "metric": None, "lo": None, "hi": None, "trials": None, "distortion": None, "predicted_distortion": None,
           "plan": None}
    if attrs is None:
        return row
    row["basis"] = attrs["basis"]
    if attrs["reached"]:
        n = int(attrs["n_weights"])
        prot = int(attrs["data_bits"]) / n
        chk = int(attrs["check_bits"]) / n
        row.update({"reached": True, "protected_bits_per_weight": prot, "check_bits_per_weight": chk,
                    "stored_bits_per_weight": 8 + (prot if code == "ideal" else chk),
                    "metric": float(attrs["metric_mean"]), "lo": float(attrs["metric_lo"]),
                    "hi": float(attrs["metric_hi"]), "trials": int(attrs["trials"]),
                    "distortion": float(attrs["metric_distortion"]),
                    "predicted_distortion": float(attrs["predicted_distortion"]), "plan": json.loads(attrs["plan"])})
    return row


def pareto_front(rows: list[dict]) -> list[dict]:
    """Rows not dominated in (thickness, stored bits per weight): no other reached row is both thinner (or
    as thin) and cheaper (or as cheap), one of them strictly. Sorted by thickness."""
    ok = [r for r in rows if r["reached"]]
    front = []
    for r in sorted(ok, key=lambda r: (r["thickness_nm"], r["stored_bits_per_weight"])):
        if all(r["stored_bits_per_weight"] < f["stored_bits_per_weight"] for f in front):
            front.append(r)
    return front


def plot_design(result: dict, path) -> None:
    """Stored bits per weight beyond the 8 data bits vs oxide thickness per code (symlog axis; TAC filled,
    uniform open), the frontier as a step, thicknesses where nothing reaches the target shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    codes = list(dict.fromkeys(r["code"] for r in result["rows"]))
    for i, code in enumerate(codes):
        color = f"C{i}"
        for method, marker, fill in (("tac", "o", color), ("uniform-msp", "s", "none")):
            pts = [(r["thickness_nm"], r["stored_bits_per_weight"] - 8) for r in result["rows"]
                   if r["code"] == code and r["method"] == method and r["reached"]]
            if pts:
                xs, ys = zip(*pts, strict=True)
                ax.plot(xs, ys, marker=marker, color=color, mfc=fill, ls="-" if method == "tac" else ":", ms=4,
                        label=f"{code} {method}")
    front = result["frontier"]
    if front:
        ax.step([r["thickness_nm"] for r in front], [r["stored_bits_per_weight"] - 8 for r in front], where="post",
                color="k", lw=2, alpha=0.4, label="Pareto frontier")
    for t in result["unreached"]:
        ax.axvline(t, color="0.85", lw=3, zorder=0)
    cfg = result["config"]
    ax.set_yscale("symlog", linthresh=1e-3)
    ax.set_ylim(0, 2 * max([r["stored_bits_per_weight"] - 8 for r in result["rows"] if r["reached"]] + [1.0]))
    ax.set(xlabel="oxide thickness [nm]", ylabel="stored bits per weight - 8 (check bits; ideal: protected bits)",
           title=f"{result['model']}: {cfg['material']} {cfg['cell']}, {cfg['years']:g} years, "
                 f"keep {cfg['target']:.0%} of INT8 {result['metric']}")
    ax.legend(fontsize=7, ncol=2, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
