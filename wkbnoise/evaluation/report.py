"""Summaries of a run file: per-point means with 95 % intervals, every method's crossing, the summary, tables.

Everything here reads a :class:`~wkbnoise.evaluation.store.RunStore`; nothing is computed that the run
did not measure (the closed-form numbers were stored by the run as well).
"""

from __future__ import annotations

import json
import math

import numpy as np

from ..allocation import METHODS
from .campaign import metric_reason
from .config import SweepConfig
from .crossing import INTERVAL_METHOD, interval

__all__ = ["ci95", "point_rows", "crossing_of", "summary_rows", "text_report", "json_report", "export_plans",
           "layer_stats", "EXPLAIN", "crossing_lines", "jsonable_summary", "summary_table"]

#: what the eval and reproduce reports say about their summary numbers
EXPLAIN = (
    "C (per method): the smallest budget on the method's nested path (each plan protects everything a smaller "
    "one does) whose mean accuracy is judged above the target: trials are added at a point until its 95 % "
    f"interval ({INTERVAL_METHOD}) lies wholly above or below the target, or the trial cap is reached "
    "(undecided). The bracket is the largest smaller budget judged below. C_U is the crossing of uniform-msp "
    "(the same top planes of every layer), C_TAC that of tac (WKB-score greedy plus per-plane correction); "
    "C_U / C says how many times fewer protected bits a method needs than uniform-msp. rho* forecasts "
    "C_U / C_TAC without Monte Carlo accuracy: the budget at which tac's predicted output distortion (first-order, "
    "through the network's measured response to its faults) falls to uniform-msp's at its m. Rows at budgets "
    "outside the grid were measured by the crossing search (marked *); rows with more trials than the grid's "
    "were extended by it.")


def ci95(x, bounds: tuple[float, float] = (0.0, 1.0)) -> tuple[float, float, float]:
    """Mean and 95 % interval of the mean of the trial values ``x``: Student-t, clipped to ``bounds``
    (the whole of ``bounds`` with one trial); see :func:`wkbnoise.evaluation.crossing.interval`."""
    return interval(x, bounds=bounds)


def _num(v):
    if isinstance(v, bytes):
        v = v.decode()
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _bounds(metric: str) -> tuple[float, float]:
    return (-1.0, 1.0) if metric == "cosine" else (0.0, 1.0)


def _model_info(store, model):
    attrs, data = store.get(f"models/{model}")
    return _str(attrs["metric"]), int(np.sum(data["n_weights"]))


def _grid_steps(store, config, model, i_rate, method, n_total) -> dict:
    """Path step of each budget of the grid: {step: budget}."""
    key = f"paths/{model}/r{i_rate}/{method}"
    if key not in store:
        return {}
    costs = store.get(key)[1]["cost_bits"]
    out = {}
    for b in config.budgets:
        k = int(np.searchsorted(costs, int(math.floor(b * n_total + 1e-9)), side="right")) - 1
        out.setdefault(k, b)
    return out


def _response(store, model: str, i_rate: int):
    """The response curve ``F`` stored with the theory record of (model, rates), or None."""
    from ..distortion import ResponseCurve

    key = f"theory/{model}/r{i_rate}"
    if key not in store:
        return None
    data = store.get(key)[1]
    if "response_s" not in data:
        return None
    return ResponseCurve.from_arrays(data)


def _through(response, s: float) -> float:
    return s if response is None or not math.isfinite(s) else float(response(s))


def point_rows(store, model: str, i_rate: int = 0) -> list[dict]:
    """Every finished point of (model, rates) as rows: method, budget (of the plan), mean, 95 % interval,
    cost, trials, failed inferences, and ``grid`` (False for a point the crossing search added).

    ``first_order_distortion`` is the plan's first-order ``S`` (stored with the point);
    ``predicted_distortion`` is ``F(S)``, through the response curve ``F`` of the run's theory record at these
    rates (the model the allocation and ``rho*`` use), or ``S`` where the run has no curve.
    """
    config = SweepConfig.from_json(store.config)
    metric, n_total = _model_info(store, model)
    response = _response(store, model, i_rate)
    rows = []
    grids = {}
    for key in store.keys(f"points/{model}/r{i_rate}/"):
        attrs, data = store.get(key)
        acc = data["accuracy"]
        mean, lo, hi = ci95(acc, _bounds(metric))
        method = _str(attrs["method"])
        if method not in grids:
            grids[method] = _grid_steps(store, config, model, i_rate, method, n_total)
        step = int(_num(attrs["step"]))
        rows.append({"method": method, "step": step, "budget": _num(attrs["budget"]), "mean": mean, "lo": lo,
                     "hi": hi, "cost_bits": int(_num(attrs["cost_bits"])), "trials": int(acc.size),
                     "failed": int(np.sum(data["failed"])) if "failed" in data else 0,
                     "grid": step in grids[method], "grid_budget": grids[method].get(step),
                     "first_order_distortion": _num(attrs.get("predicted_distortion")),
                     "predicted_distortion": _through(response, _num(attrs.get("predicted_distortion"))),
                     "distortion": float(np.nanmean(data["distortion"])) if np.isfinite(data["distortion"]).any()
                     else math.nan})
    order = {m: i for i, m in enumerate(METHODS)}
    rows.sort(key=lambda r: (order.get(r["method"], 99), r["budget"]))
    return rows


def crossing_of(store, model: str, i_rate: int, method: str) -> dict | None:
    """The stored crossing of ``method``: reached, budget ``c`` and ``bracket`` [bits per weight], trials at
    ``c`` and the cap, undecided and non-monotone budgets, the judged points (``trail`` rows: step, budget,
    mean, lo, hi, trials, verdict -1/0/1), and the mean with its interval at ``c``."""
    key = f"crossings/{model}/r{i_rate}/{method}"
    if key not in store:
        return None
    attrs, data = store.get(key)
    reached = _bool(attrs["reached"])
    out = {"method": method, "reached": reached, "c": _num(attrs["budget"]) if reached else None,
           "bracket": None if int(_num(attrs["bracket_step"])) < 0 else _num(attrs["bracket_budget"]),
           "cost_bits": int(_num(attrs["cost_bits"])), "n_weights": int(_num(attrs["n_weights"])),
           "goal": _num(attrs["goal"]), "trials_at_c": int(_num(attrs["trials_at_c"])),
           "cap": int(_num(attrs["cap"])), "undecided": _list(attrs["undecided"]),
           "non_monotone": _list(attrs["non_monotone"]), "trail": data["trail"], "at_c": None}
    if reached:
        row = data["trail"][data["trail"][:, 0] == _num(attrs["step"])][0]
        out["at_c"] = (float(row[2]), float(row[3]), float(row[4]), int(row[5]))
    return out


def _bool(v) -> bool:
    v = _str(v) if isinstance(v, bytes | str) else v
    return v in (True, "True", "true", 1) or (isinstance(v, np.bool_) and bool(v))


def _list(v) -> list:
    v = _str(v) if isinstance(v, bytes | str) else v
    return json.loads(v) if isinstance(v, str) else list(v)


def summary_rows(store) -> list[dict]:
    """Per (model, rates): clean, INT-B, every method's crossing ``C`` with its bracket and ``C_U / C``, the
    best method (smallest ``C``), ``rho*`` and its log ratio to tac's measured ratio, and the C4 differences.

    Keys kept for tac: ``c_u`` (uniform-msp's C, bits per weight), ``m_u``, ``c_tac``, ``ratio`` (``C_U /
    C_TAC``), ``tac_at_crossing`` (mean, lo, hi, trials). ``crossings`` maps each method to its
    :func:`crossing_of` dict plus ``ratio``; ``best`` names the method of smallest ``C`` (ties: higher mean
    at ``C``). ``tac_minus_magnitude`` maps each grid budget to the difference of mean metrics and its 95 %
    half-width (independent trials).
    """
    config = SweepConfig.from_json(store.config)
    out = []
    for spec in config.models:
        mkey = f"models/{spec.name}"
        if mkey not in store:
            continue
        mattrs, _ = store.get(mkey)
        for i_rate, rspec in enumerate(spec.rates):
            metric = _str(mattrs["metric"])
            row = {"model": spec.name, "rates": rspec.label, "metric": metric,
                   "metric_reason": _str(mattrs.get("metric_reason", metric_reason(metric))),
                   "inputs": _str(mattrs.get("inputs", "")),
                   "goal": _num(mattrs.get("goal", config.target * _num(mattrs["int8"]))),
                   "clean": _num(mattrs["clean"]), "int8": _num(mattrs["int8"]),
                   "n_images": int(_num(mattrs["n_images"])),
                   "label_histogram": {int(k): v for k, v in _dict(mattrs.get("label_histogram")).items()},
                   "sample": _str(mattrs.get("sample", "")),
                   "c_u": None, "m_u": None, "c_tac": None, "ratio": None, "rho_star": None, "log_ratio": None,
                   "tac_at_crossing": None, "tac_bracket": None, "crossings": {}, "best": None}
            crossings = {m: crossing_of(store, spec.name, i_rate, m) for m in config.crossing}
            crossings = {m: c for m, c in crossings.items() if c is not None}
            cu = crossings.get("uniform-msp")
            if cu and cu["reached"]:
                row["m_u"] = int(round(cu["c"]))
                row["c_u"] = cu["c"]
            for c in crossings.values():
                c["ratio"] = None
                if row["c_u"] is not None and c["reached"]:
                    c["ratio"] = math.inf if c["c"] == 0 else row["c_u"] / c["c"]
            row["crossings"] = crossings
            ct = crossings.get("tac")
            if ct and ct["reached"]:
                row["c_tac"], row["ratio"], row["tac_at_crossing"] = ct["c"], ct["ratio"], ct["at_c"]
            if ct:
                row["tac_bracket"] = ct["bracket"]
            reached = [c for c in crossings.values() if c["reached"]]
            if reached:
                row["best"] = min(reached, key=lambda c: (c["c"], -c["at_c"][0]))["method"]
            tkey = f"theory/{spec.name}/r{i_rate}"
            if row["m_u"] and tkey in store:
                rho = float(store.get(tkey)[1]["rho_star"][row["m_u"]])
                row["rho_star"] = rho
                if row["ratio"] and math.isfinite(row["ratio"]) and rho > 0 and math.isfinite(rho):
                    row["log_ratio"] = math.log(rho / row["ratio"])
            diffs = {}
            at = {}
            for r in point_rows(store, spec.name, i_rate):
                if r["grid"]:
                    for b in config.budgets:
                        if _grid_step(store, config, spec.name, i_rate, r["method"], b) == r["step"]:
                            at[(r["method"], b)] = r
            for b in config.budgets:
                t, m = at.get(("tac", b)), at.get(("magnitude", b))
                if t and m:
                    se = math.hypot(t["hi"] - t["mean"], m["hi"] - m["mean"])
                    diffs[b] = (t["mean"] - m["mean"], se)
            row["tac_minus_magnitude"] = diffs
            out.append(row)
    return out


def _grid_step(store, config, model, i_rate, method, b) -> int:
    costs = store.get(f"paths/{model}/r{i_rate}/{method}")[1]["cost_bits"]
    n_total = _model_info(store, model)[1]
    return int(np.searchsorted(costs, int(math.floor(b * n_total + 1e-9)), side="right")) - 1


def _dict(v) -> dict:
    if v is None:
        return {}
    v = _str(v)
    return json.loads(v) if v else {}


def _str(v) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _f(v, fmt=".3f", none="-"):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return none
    if isinstance(v, float) and math.isinf(v):
        return "inf"
    return format(v, fmt)


def _c(c, fmt=".4g") -> str:
    """``C [bracket]`` of a crossing dict, or why there is none."""
    if c is None:
        return "-"
    if not c["reached"]:
        return "not reached"
    return f"{_f(c['c'], fmt)} [{_f(c['bracket'], fmt, none='none')}]"


def _notes(c) -> str:
    notes = []
    if c["reached"]:
        notes.append(f"{c['trials_at_c']} trials at C")
    if c["undecided"]:
        notes.append(f"undecided at the cap of {c['cap']} trials: {', '.join(f'{b:.4g}' for b in c['undecided'])}")
    if c["non_monotone"]:
        notes.append(f"judged below at larger budgets: {', '.join(f'{b:.4g}' for b in c['non_monotone'])}")
    return "; ".join(notes)


def crossing_lines(s: dict, indent: str = "  ") -> list[str]:
    """One line per method: C [bracket], C_U / C, trials, notes."""
    lines = [f"{indent}{'method':<15} {'C [bracket] b/w':>22} {'C_U/C':>7}  notes"]
    for m, c in s["crossings"].items():
        best = "  <- best" if m == s["best"] else ""
        lines.append(f"{indent}{m:<15} {_c(c):>22} {_f(c['ratio'], '.2f'):>7}  {_notes(c)}{best}")
    return lines


def text_report(store, *, header: str = "") -> str:
    """The ``eval`` printout: per model the clean/INT-B metric and its image sample, per method and plan the
    mean with its 95 % interval, every method's crossing, then the summary table and what its numbers mean."""
    config = SweepConfig.from_json(store.config)
    lines = [header] if header else []
    summary = {(r["model"], r["rates"]): r for r in summary_rows(store)}
    for spec in config.models:
        for i_rate, rspec in enumerate(spec.rates):
            s = summary.get((spec.name, rspec.label))
            if s is None:
                continue
            metric = s["metric"]
            lines.append("")
            lines.append(f"{spec.name}  [{rspec.label}]  metric: {metric} ({s['metric_reason']})")
            if s["inputs"]:
                lines.append(f"  inputs: {s['inputs']}")
            if s["label_histogram"]:
                lines.append(f"  per label: {_hist(s['label_histogram'])}")
            goal = (f"target mean cosine >= {s['goal']:.4f} (absolute)" if metric == "cosine"
                    else f"target {100 * config.target:g} % of int8 = {s['goal']:.4f}")
            lines.append(f"  clean (float) {s['clean']:.4f}   int8 {s['int8']:.4f}   {goal}")
            lines.append(f"  {'method':<15} {'bits/weight':>11} {'mean':>8} {'95 % CI':>19} {'trials':>6}")
            failed = 0
            for r in point_rows(store, spec.name, i_rate):
                failed += r["failed"]
                lines.append(f"  {r['method']:<15} {r['budget']:>11.4f} {r['mean']:>8.4f} "
                             f"[{r['lo']:.4f}, {r['hi']:.4f}] {r['trials']:>6}{'' if r['grid'] else ' *'}"
                             + (f"  {r['failed']} failed inferences" if r["failed"] else ""))
            if failed:
                lines.append(f"  {failed} inferences gave NaN or inf outputs; each was scored wrong.")
            lines += crossing_lines(s)
            lines.append(f"  C_U = {_f(s['c_u'], '.4g')} bits/weight (m = {_f(s['m_u'], 'd')}),  "
                         f"C_TAC = {_f(s['c_tac'], '.4g')} bits/weight,  C_U/C_TAC = {_f(s['ratio'], '.2f')},  "
                         f"rho* = {_f(s['rho_star'], '.2f')},  best: {s['best'] or '-'}")
    lines.append("")
    lines.append(summary_table(list(summary.values()), config.budgets))
    lines += ["", EXPLAIN]
    return "\n".join(lines)


def _hist(h: dict) -> str:
    return " ".join(f"{k}:{v}" for k, v in sorted(h.items()))


def summary_table(rows, budgets, markdown: bool = False) -> str:
    """The summary: model, rates, clean, int8, C_U, C_TAC [bracket] and C_U/C_TAC, the best method with its
    C [bracket] and C_U/C, rho* and log(rho*/ratio), and tac - magnitude at 0.25 b/w."""
    b0 = 0.25 if 0.25 in budgets else (budgets[0] if budgets else None)
    cols = ["model", "rates", "clean", "int8", "C_U [b/w]", "C_TAC [bracket]", "C_U/C_TAC", "best method",
            "C_best [bracket]", "C_U/C_best", "rho*", "log(rho*/ratio)",
            f"tac-magnitude @{b0:g} b/w" if b0 is not None else "tac-magnitude"]
    body = []
    for r in rows:
        d = r["tac_minus_magnitude"].get(b0) if b0 is not None else None
        best = r["crossings"].get(r["best"]) if r["best"] else None
        body.append([r["model"], r["rates"], _f(r["clean"], ".4f"), _f(r["int8"], ".4f"), _f(r["c_u"], ".4g"),
                     _c(r["crossings"].get("tac")), _f(r["ratio"], ".2f"), r["best"] or "-", _c(best),
                     _f(best["ratio"] if best else None, ".2f"), _f(r["rho_star"], ".2f"),
                     _f(r["log_ratio"], "+.2f"), "-" if d is None else f"{100 * d[0]:+.1f} pts (+-{100 * d[1]:.1f})"])
    if markdown:
        lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        lines += ["| " + " | ".join(row) + " |" for row in body]
        return "\n".join(lines)
    widths = [max(len(c), *(len(row[i]) for row in body)) if body else len(c) for i, c in enumerate(cols)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join([fmt.format(*cols)] + [fmt.format(*row) for row in body])


def _jsonable_crossing(c: dict) -> dict:
    out = {k: v for k, v in c.items() if k != "trail"}
    out["points"] = [{"step": int(t[0]), "budget": float(t[1]), "mean": float(t[2]), "lo": float(t[3]),
                      "hi": float(t[4]), "trials": int(t[5]), "verdict": {-1: "below", 0: "undecided", 1: "above"}[int(t[6])]}
                     for t in c["trail"]]
    return out


def jsonable_summary(rows: list[dict]) -> list[dict]:
    """``summary_rows`` made JSON-ready (crossing trails as point lists, C4 differences as dicts)."""
    for r in rows:
        r["tac_minus_magnitude"] = {str(k): {"diff": v[0], "ci95": v[1]} for k, v in r["tac_minus_magnitude"].items()}
        r["crossings"] = {m: _jsonable_crossing(c) for m, c in r["crossings"].items()}
        r["label_histogram"] = {str(k): v for k, v in r["label_histogram"].items()}
    return rows


def json_report(store) -> dict:
    """The ``eval --json`` payload: configuration, per-model points (with the image sample) and the summary."""
    config = SweepConfig.from_json(store.config)
    models = []
    for spec in config.models:
        for i_rate, rspec in enumerate(spec.rates):
            if f"models/{spec.name}" in store:
                mattrs = store.get(f"models/{spec.name}")[0]
                models.append({"model": spec.name, "rates": rspec.label, "n_images": int(_num(mattrs["n_images"])),
                               "sample": _str(mattrs.get("sample", "")),
                               "label_histogram": _dict(mattrs.get("label_histogram")),
                               "points": point_rows(store, spec.name, i_rate)})
    return {"config": json.loads(store.config), "interval": INTERVAL_METHOD, "explain": EXPLAIN, "models": models,
            "summary": jsonable_summary(summary_rows(store))}


def layer_stats(store, model: str, i_rate: int = 0):
    """The :class:`~wkbnoise.allocation.LayerStat` rows a run used for ``model`` at rates ``i_rate``."""
    from ..allocation import LayerStat
    from ..rates import FlipRates

    attrs, data = store.get(f"models/{model}")
    names = json.loads(_str(attrs["layer_names"]))
    tattrs, _ = store.get(f"theory/{model}/r{i_rate}")
    rates = FlipRates(json.loads(_str(tattrs["p_down"])), json.loads(_str(tattrs["p_up"])))
    return [LayerStat(n, int(k), float(s), float(g), rates)
            for n, k, s, g in zip(names, data["n_weights"], data["scale"], data["G"], strict=True)]


def export_plans(store, path, *, code: str = "ideal") -> list[dict]:
    """Write the TAC plan at each model's 95 % crossing (layer -> protected planes, data and check bits) as JSON."""
    from pathlib import Path

    from ..allocation import plan_to_json

    config = SweepConfig.from_json(store.config)
    plans = []
    for spec in config.models:
        for i_rate, rspec in enumerate(spec.rates):
            c = crossing_of(store, spec.name, i_rate, "tac")
            if not c or not c["reached"]:
                continue
            step = int(_num(store.get(f"crossings/{spec.name}/r{i_rate}/tac")[0]["step"]))
            pattrs, _ = store.get(f"points/{spec.name}/r{i_rate}/tac/k{step:05d}")
            plan = json.loads(_str(pattrs["plan"]))
            doc = json.loads(plan_to_json(layer_stats(store, spec.name, i_rate), plan, code=code, method="tac",
                                          bits_per_weight=c["c"]))
            plans.append({"model": spec.name, "rates": rspec.label, **doc})
    Path(path).write_text(json.dumps(plans, indent=1))
    return plans
