"""Summaries of a run file: per-point means with 95 % intervals, the C_U / C_TAC / rho* summary, text tables.

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

__all__ = ["ci95", "point_rows", "summary_rows", "text_report", "json_report", "export_plans", "layer_stats"]


def ci95(x) -> tuple[float, float, float]:
    """Mean and two-sided 95 % Student-t interval of the mean of ``x`` (the interval is the mean when n = 1)."""
    x = np.asarray(x, dtype=np.float64)
    m = float(x.mean())
    if x.size < 2:
        return m, m, m
    from scipy import stats

    h = float(stats.t.ppf(0.975, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))
    return m, m - h, m + h


def _num(v):
    if isinstance(v, bytes):
        v = v.decode()
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def point_rows(store, model: str, i_rate: int = 0) -> list[dict]:
    """Every finished point of (model, rates) as rows: method, budget, mean, 95 % CI, cost, trials."""
    rows = []
    for key in store.keys(f"points/{model}/r{i_rate}/"):
        attrs, data = store.get(key)
        acc = data["accuracy"]
        mean, lo, hi = ci95(acc)
        method = attrs["method"].decode() if isinstance(attrs["method"], bytes) else str(attrs["method"])
        rows.append({"method": method, "budget": _num(attrs["budget"]), "mean": mean, "lo": lo, "hi": hi,
                     "cost_bits": int(_num(attrs["cost_bits"])), "trials": int(acc.size),
                     "predicted_distortion": _num(attrs.get("predicted_distortion")),
                     "distortion": float(np.mean(data["distortion"]))})
    order = {m: i for i, m in enumerate(METHODS)}
    rows.sort(key=lambda r: (order.get(r["method"], 99), r["budget"]))
    return rows


def _crossing(store, model, i_rate, method):
    key = f"crossings/{model}/r{i_rate}/{method}"
    if key not in store:
        return None
    attrs, data = store.get(key)
    reached = bool(attrs["reached"]) if not isinstance(attrs["reached"], str) else attrs["reached"] == "True"
    return {"reached": reached, "budget": _num(attrs["budget"]), "cost_bits": int(_num(attrs["cost_bits"])),
            "n_weights": int(_num(attrs["n_weights"])), "goal": _num(attrs["goal"]), "trail": data["trail"]}


def summary_rows(store) -> list[dict]:
    """Per (model, rates): clean, INT-B, C_U, C_TAC (bits per weight), ratio, rho*, log ratio, C4 differences.

    ``C_U`` is uniform-msp's smallest sufficient ``m`` (bits per weight = m), ``C_TAC`` the cost of the
    smallest sufficient TAC plan per weight; ``ratio = C_U / C_TAC``; ``rho*`` the closed form at that
    ``m`` (with uniform-msp's drift bias); ``tac_minus_magnitude`` maps each budget of the grid to the
    difference of mean metrics and its 95 % half-width (independent trials).
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
                   "c_u": None, "m_u": None, "c_tac": None, "ratio": None, "rho_star": None, "log_ratio": None,
                   "tac_at_crossing": None}
            cu = _crossing(store, spec.name, i_rate, "uniform-msp")
            ct = _crossing(store, spec.name, i_rate, "tac")
            if cu and cu["reached"]:
                row["m_u"] = int(round(cu["budget"]))
                row["c_u"] = cu["cost_bits"] / cu["n_weights"]
            if ct and ct["reached"]:
                row["c_tac"] = ct["cost_bits"] / ct["n_weights"]
                pts = {(r["method"], r["budget"]): r for r in point_rows(store, spec.name, i_rate)}
                p = pts.get(("tac", ct["budget"]))
                if p:
                    row["tac_at_crossing"] = (p["mean"], p["lo"], p["hi"], p["trials"])
            if row["c_u"] is not None and row["c_tac"] is not None:
                row["ratio"] = math.inf if row["c_tac"] == 0 else row["c_u"] / row["c_tac"]
            tkey = f"theory/{spec.name}/r{i_rate}"
            if row["m_u"] and tkey in store:
                rho = float(store.get(tkey)[1]["rho_star"][row["m_u"]])
                row["rho_star"] = rho
                if row["ratio"] and math.isfinite(row["ratio"]) and rho > 0 and math.isfinite(rho):
                    row["log_ratio"] = math.log(rho / row["ratio"])
            diffs = {}
            pts = {(r["method"], r["budget"]): r for r in point_rows(store, spec.name, i_rate)}
            for b in config.budgets:
                t, m = pts.get(("tac", round(b, 4))), pts.get(("magnitude", round(b, 4)))
                if t and m:
                    se = math.hypot(t["hi"] - t["mean"], m["hi"] - m["mean"])
                    diffs[b] = (t["mean"] - m["mean"], se)
            row["tac_minus_magnitude"] = diffs
            out.append(row)
    return out


def _str(v) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _f(v, fmt=".3f", none="-"):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return none
    if isinstance(v, float) and math.isinf(v):
        return "inf"
    return format(v, fmt)


def text_report(store, *, header: str = "") -> str:
    """The ``eval`` printout: per model the clean/INT-B metric, per method and budget the mean with its
    95 % interval, then the summary table."""
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
            goal = (f"target mean cosine >= {s['goal']:.4f} (absolute)" if metric == "cosine"
                    else f"target {100 * config.target:g} % of int8 = {s['goal']:.4f}")
            lines.append(f"  clean (float) {s['clean']:.4f}   int8 {s['int8']:.4f}   {goal}")
            lines.append(f"  {'method':<15} {'bits/weight':>11} {'mean':>8} {'95 % CI':>19} {'trials':>6}")
            for r in point_rows(store, spec.name, i_rate):
                lines.append(f"  {r['method']:<15} {r['cost_bits'] / max(_n(store, spec.name), 1):>11.4f} "
                             f"{r['mean']:>8.4f} [{r['lo']:.4f}, {r['hi']:.4f}] {r['trials']:>6}")
            lines.append(f"  C_U = {_f(s['c_u'], '.4g')} bits/weight (m = {_f(s['m_u'], 'd')}),  "
                         f"C_TAC = {_f(s['c_tac'], '.4g')} bits/weight,  C_U/C_TAC = {_f(s['ratio'], '.2f')},  "
                         f"rho* = {_f(s['rho_star'], '.2f')}")
    lines.append("")
    lines.append(summary_table(list(summary.values()), config.budgets))
    return "\n".join(lines)


def _n(store, model) -> int:
    return int(np.sum(store.get(f"models/{model}")[1]["n_weights"]))


def summary_table(rows, budgets, markdown: bool = False) -> str:
    """The summary: model, rates, clean, int8, C_U, C_TAC, ratio, rho*, and tac - magnitude at 0.25 b/w."""
    b0 = 0.25 if 0.25 in budgets else (budgets[0] if budgets else None)
    cols = ["model", "rates", "clean", "int8", "C_U [b/w]", "C_TAC [b/w]", "C_U/C_TAC", "rho*",
            "log(rho*/ratio)", f"tac-magnitude @{b0:g} b/w" if b0 is not None else "tac-magnitude"]
    body = []
    for r in rows:
        d = r["tac_minus_magnitude"].get(b0) if b0 is not None else None
        body.append([r["model"], r["rates"], _f(r["clean"], ".4f"), _f(r["int8"], ".4f"), _f(r["c_u"], ".4g"),
                     _f(r["c_tac"], ".4g"), _f(r["ratio"], ".2f"), _f(r["rho_star"], ".2f"),
                     _f(r["log_ratio"], "+.2f"), "-" if d is None else f"{100 * d[0]:+.1f} pts (+-{100 * d[1]:.1f})"])
    if markdown:
        lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        lines += ["| " + " | ".join(row) + " |" for row in body]
        return "\n".join(lines)
    widths = [max(len(c), *(len(row[i]) for row in body)) if body else len(c) for i, c in enumerate(cols)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join([fmt.format(*cols)] + [fmt.format(*row) for row in body])


def json_report(store) -> dict:
    """The ``eval --json`` payload: configuration, per-model points and the summary."""
    config = SweepConfig.from_json(store.config)
    models = []
    for spec in config.models:
        for i_rate, rspec in enumerate(spec.rates):
            if f"models/{spec.name}" in store:
                models.append({"model": spec.name, "rates": rspec.label,
                               "points": point_rows(store, spec.name, i_rate)})
    summary = summary_rows(store)
    for r in summary:
        r["tac_minus_magnitude"] = {str(k): {"diff": v[0], "ci95": v[1]} for k, v in r["tac_minus_magnitude"].items()}
    return {"config": json.loads(store.config), "models": models, "summary": summary}


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
            c = _crossing(store, spec.name, i_rate, "tac")
            if not c or not c["reached"]:
                continue
            pattrs, _ = store.get(f"points/{spec.name}/r{i_rate}/tac/{c['budget']:.4f}")
            plan = json.loads(_str(pattrs["plan"]))
            doc = json.loads(plan_to_json(layer_stats(store, spec.name, i_rate), plan, code=code, method="tac",
                                          bits_per_weight=c["budget"]))
            plans.append({"model": spec.name, "rates": rspec.label, **doc})
    Path(path).write_text(json.dumps(plans, indent=1))
    return plans
