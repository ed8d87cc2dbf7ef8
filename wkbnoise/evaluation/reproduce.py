"""``python -m wkbnoise reproduce``: the paper's evaluation protocol on the zoo, one HDF5 run, one page.

The run has two parts, both stored in the same resumable run file:

1. the campaign (claims C1-C5): every method at every budget on every zoo model, and every method's 95 %
   crossing on its nested budget path by the sequential rule (:func:`wkbnoise.evaluation.sweep.run_sweep`);
2. the theory checks (claim C6), as records under ``claims/``: the ``validate`` report (symmetric and
   charge-loss asymmetric rates), T1/T2 per code and per plane against Monte Carlo, the T3 law of the
   error of a real layer's weights beside a Gaussian of the same variance, and T5 (predicted vs measured
   output distortion) on each zoo model.

:func:`render` then writes ``results.md`` (``results-quick.md`` for ``--quick``) and the PNG plots from the run file alone; nothing on the page is
typed in by hand. Each part is a set of independent records keyed by what they measure, so an interrupted
run resumes where it stopped (and a later distributed engine can farm the points out).
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path

import numpy as np

from .. import theory
from .._rng import derive_keys
from ..faults import flip_codes
from ..quant import codes_to_values, quantize
from ..rates import FlipRates
from .config import SweepConfig
from .protocol import FULL, QUICK_REPRODUCE, describe, eval_config
from .report import EXPLAIN, _c, _f, _notes, _num, jsonable_summary, point_rows, summary_rows, summary_table
from .store import RunStore
from .sweep import run_sweep, versions

__all__ = ["reproduce", "reproduce_config", "claim_records", "claim_verdicts", "render", "validate_rows", "t5_rows_of",
           "CLAIMED"]

#: the paper's headline figures, shown beside what this run measured
CLAIMED = {"ratio_lo": 3.4, "ratio_hi": 33.6, "tac_minus_magnitude": 0.24, "keep": 0.95}

#: settings of the theory part, full and quick
THEORY_FULL = {"validate_samples": 1 << 24, "code_samples": 1 << 14, "hist_trials": 20, "t5_trials": 20,
               "t5_images": 500, "t5_p": None}
THEORY_QUICK = {"validate_samples": 1 << 22, "code_samples": 1 << 12, "hist_trials": 5, "t5_trials": 10,
                "t5_images": 200, "t5_p": None}
T3_LAYER = ("lenet5", "fc1.weight")  # the real layer whose error law is drawn (48,000 weights)
ASYMMETRIC = (0.10, 0.02)  # (p_down, p_up) of the charge-loss validate run


def reproduce_config(quick: bool, models=None, settings=None, theory_settings=None) -> SweepConfig:
    """The run's configuration: the campaign of :mod:`.protocol` plus the theory settings in ``extra``."""
    from .. import zoo

    names = list(models) if models else zoo.names()
    base = settings or (QUICK_REPRODUCE if quick else FULL)
    config = eval_config([(n, None, n) for n in names], settings=base)
    extra = dict(theory_settings or (THEORY_QUICK if quick else THEORY_FULL))
    extra["t5_p"] = None if extra.get("t5_p") is None else list(extra["t5_p"])
    extra.update({"reproduce": True, "quick": bool(quick)})
    return dataclasses.replace(config, extra=extra)


def reproduce(*, quick: bool = False, out_dir: str = "runs", docs_dir: str = "docs", progress: bool = True,
              log=None, models=None, settings=None, theory_settings=None, executor=None) -> dict:
    """Run (or resume) the protocol and render the results page.

    Parameters
    ----------
    quick : bool
        The quick form (fewer trials and images; the page says so).
    out_dir, docs_dir : str
        Folder of the run file (``reproduce.h5`` or ``reproduce-quick.h5``) and of the page (``results.md``
        or ``results-quick.md``) + ``img/``.
    progress : bool
        tqdm bars on stderr.
    log : callable, optional
        One-line progress messages.
    models, settings, theory_settings : optional
        Overrides for tests (a subset of the zoo, smaller campaigns); the page names them.
    executor : optional
        Where the campaign's trials run (:func:`wkbnoise.evaluation.executor.open_executor`); default here.

    Returns
    -------
    dict
        ``payload`` (the JSON summary), ``text`` (the printed summary), ``page`` (path of the page).
    """
    say = log or (lambda msg: None)
    config = reproduce_config(quick, models, settings, theory_settings)
    out = Path(out_dir) / ("reproduce-quick.h5" if quick else "reproduce.h5")
    t0 = time.perf_counter()
    run_sweep(config, out, progress=progress, log=say, intro=describe(config, quick), executor=executor)
    store = RunStore(out, config.to_json(), versions())
    claim_records(store, config, progress=progress, log=say)
    store.close()
    elapsed = time.perf_counter() - t0
    page = render(store, docs_dir, run_file=out)
    summary = jsonable_summary(summary_rows(store))
    payload = {"run_file": str(out), "page": str(page), "quick": quick, "run_time_s": elapsed,
               "summary": summary, "claims": claim_verdicts(store)}
    rows = summary_rows(store)
    text = "\n".join([describe(config, quick), f"run time {elapsed:.0f} s; run file {out}; page {page}", "",
                      summary_table(rows, config.budgets), "",
                      *(f"{c['claim']}: {c['verdict']} - {c['measured']}" for c in payload["claims"])])
    return {"payload": payload, "text": text, "page": page}


# ------------------------------------------------------------------------------------------- claim records
def claim_records(store: RunStore, config: SweepConfig, *, progress: bool = False, log=None) -> None:
    """Compute every ``claims/...`` record that the run file lacks (C6: theory against Monte Carlo)."""
    say = log or (lambda msg: None)
    x = config.extra
    if "claims/validate/symmetric" not in store or "claims/validate/asymmetric" not in store:
        from .validate import ValidationConfig, run_validation

        for label, rates in (("symmetric", FlipRates.symmetric(0.10, config.bits)),
                             ("asymmetric", FlipRates.uniform(*ASYMMETRIC, config.bits))):
            key = f"claims/validate/{label}"
            if key in store:
                continue
            say(f"validate ({label} rates, {x['validate_samples']} samples per run)")
            vc = ValidationConfig(rates, samples=int(x["validate_samples"]), seed=config.seed)
            rows = run_validation(vc, progress=progress)
            store.put(key, {"rows": json.dumps([dataclasses.asdict(r) for r in rows]),
                            "rates": json.dumps(rates.to_dict())})
    if "claims/t12" not in store:
        say(f"T1/T2 per code and per plane ({x['code_samples']} draws per code)")
        store.put("claims/t12", *_t12_record(config.bits, 0.10, int(x["code_samples"]), config.seed))
    if "claims/t3" not in store:
        say("T3: error law of a real layer's weights against a Gaussian of the same variance")
        store.put("claims/t3", *_t3_record(config.bits, 0.10, int(x["hist_trials"]), config.seed))
    for spec in config.models:
        key = f"claims/t5/{spec.name}"
        if key in store:
            continue
        say(f"T5 on {spec.name}: predicted vs measured output distortion")
        store.put(key, *_t5_record(spec.name, config, x))


def _t12_record(bits: int, p: float, n: int, seed: int):
    """T1 (mean) and T2 (variance, per plane) of every code under symmetric flips: theory and Monte Carlo."""
    rates = FlipRates.symmetric(p, bits)
    codes = np.repeat(np.arange(1 << bits, dtype=np.uint8 if bits <= 8 else np.uint16), n)
    flipped = flip_codes(codes, rates, int(derive_keys(seed, (12,), 1)[0]))
    q = codes_to_values(flipped, bits).astype(np.float64).reshape(1 << bits, n)
    bits_set = ((flipped.astype(np.int64)[:, None] >> np.arange(bits)) & 1).reshape(1 << bits, n, bits)
    coef = theory.plane_coefficients(bits)
    plane_var_mc = (bits_set.var(axis=1, ddof=1) * coef**2).mean(axis=0)  # averaged over codes
    plane_var_th = theory.plane_variances(rates).mean(axis=0)
    return ({"p_flip": p, "bits": bits, "draws_per_code": n},
            {"value": theory.code_values(bits).astype(np.float64), "mean_theory": theory.mean_drift(rates),
             "mean_mc": q.mean(axis=1), "var_theory": theory.conditional_variance(rates),
             "var_mc": q.var(axis=1, ddof=1), "plane_var_theory": plane_var_th, "plane_var_mc": plane_var_mc})


def _t3_record(bits: int, p: float, trials: int, seed: int):
    """Histogram of ``q~ - q`` over a real layer's INT-B weights, the exact law (T3) and the Gaussian model."""
    from .. import zoo

    model = zoo.load(T3_LAYER[0])
    layer = next(layer for layer in model.layers if layer.name == T3_LAYER[1])
    qt = quantize(np.asarray(layer.weight), bits)
    rates = FlipRates.symmetric(p, bits)
    codes = qt.codes.ravel()
    q0 = codes_to_values(codes, bits).astype(np.int64)
    span = np.arange(-(1 << bits) + 1, 1 << bits)  # every possible error value
    counts = np.zeros(span.size, dtype=np.int64)
    for t, key in enumerate(derive_keys(seed, (3,), trials)):
        del t
        err = codes_to_values(flip_codes(codes, rates, int(key)), bits).astype(np.int64) - q0
        counts += np.bincount(err - span[0], minlength=span.size)
    hist = np.bincount(codes.astype(np.int64), minlength=1 << bits) / codes.size
    exact = np.zeros(span.size)
    for c in np.flatnonzero(hist):
        values, probs = theory.error_law(rates, int(c))
        exact[values.astype(np.int64) - span[0]] += hist[c] * probs
    mean = float(exact @ span)
    var = float(exact @ (span - mean) ** 2)
    return ({"model": T3_LAYER[0], "layer": T3_LAYER[1], "p_flip": p, "bits": bits, "trials": trials,
             "n_weights": int(codes.size), "variance": var, "mean": mean},
            {"error": span.astype(np.float64), "counts": counts, "exact": exact})


def _t5_record(name: str, config: SweepConfig, x: dict):
    from .. import zoo
    from ..sensitivity import layer_sensitivities
    from .campaign import Evaluator
    from .t5 import T5_P, t5_inputs, t5_measure

    model = zoo.load(name)
    images, calib = t5_inputs(int(x["t5_images"]), config.calibration, seed=config.seed)
    ev = Evaluator(model, images, None, bits=config.bits)
    sens = layer_sensitivities(model, model.preprocess(calib), base_weights=ev.int8_weights, draws=config.draws,
                               seed=config.seed)
    rows = []
    for p in T5_P.get(name, T5_P["default"]) if x.get("t5_p") is None else x["t5_p"]:
        first = t5_measure(model, None, calib, float(p), trials=int(x["t5_trials"]), seed=config.seed, evaluator=ev,
                           sensitivities=sens)
        rows += [first, t5_measure(model, None, calib, float(p), trials=int(x["t5_trials"]), seed=config.seed,
                                   evaluator=ev, sensitivities=sens, plan="tac", response=first["response"])]
    keys = ("p_flip", "predicted", "predicted_se", "measured", "measured_se", "first_order")
    return ({"trials": int(x["t5_trials"]), "n_images": int(x["t5_images"]), "calibration": len(calib),
             "calibration_from": "held-out test images", "plans": json.dumps([r["plan"] for r in rows])},
            {k: np.array([r[k] for r in rows], dtype=np.float64) for k in keys})


# ----------------------------------------------------------------------------------------------- verdicts
def _attrs(store, key):
    a = store.get(key)[0]
    return {k: (v.decode() if isinstance(v, bytes) else v) for k, v in a.items()}


def validate_rows(store, label: str) -> list[dict]:
    """The stored ``validate`` rows of one rate set."""
    return json.loads(_attrs(store, f"claims/validate/{label}")["rows"])


def t5_rows_of(store, config: SweepConfig):
    """Per model and p: predicted and measured distortion, the ratio and the PASS/FAIL of the z-tolerance."""
    from .t5 import t5_rows

    out = []
    for spec in config.models:
        key = f"claims/t5/{spec.name}"
        if key not in store:
            continue
        attrs, d = store.get(key)
        plans = json.loads(attrs["plans"]) if "plans" in attrs else ["correct-only"] * d["p_flip"].size
        results = [(spec.name, {"p_flip": float(d["p_flip"][i]), "predicted": float(d["predicted"][i]),
                                "predicted_se": float(d["predicted_se"][i]), "measured": float(d["measured"][i]),
                                "measured_se": float(d["measured_se"][i]), "trials": int(_num(attrs["trials"])),
                                "plan": plans[i],
                                "first_order": float(d["first_order"][i]) if "first_order" in d else 0.0})
                   for i in range(d["p_flip"].size)]
        out += [dataclasses.asdict(r) for r in t5_rows(results)]
    return out


def claim_verdicts(store) -> list[dict]:
    """C1-C6 as measured: one dict per claim with ``claim``, ``verdict`` and ``measured`` (a sentence)."""
    config = SweepConfig.from_json(store.config)
    rows = summary_rows(store)
    out = []
    keep = [r for r in rows if r["tac_at_crossing"] is not None]
    c1 = "; ".join(f"{r['model']} {r['rates']}: {_pct(r['tac_at_crossing'][0])} (target "
                   f"{_pct(config.target * r['int8'])}) at {r['c_tac']:.3g} b/w" for r in keep)
    missed = [r["model"] for r in rows if r["tac_at_crossing"] is None]
    out.append({"claim": "C1", "verdict": "reproduced" if not missed else f"not reached on {', '.join(missed)}",
                "measured": c1 + (f"; no TAC budget reached the target on {', '.join(missed)}" if missed else "")})
    ratios = [(r["model"], r["ratio"]) for r in rows if r["ratio"] is not None]
    inside = [m for m, v in ratios if CLAIMED["ratio_lo"] <= v <= CLAIMED["ratio_hi"]]
    best = [(r["model"], r["best"], r["crossings"][r["best"]]["ratio"]) for r in rows
            if r["best"] and r["crossings"][r["best"]]["ratio"] is not None]
    best_in = [m for m, _, v in best if CLAIMED["ratio_lo"] <= v <= CLAIMED["ratio_hi"]]
    out.append({"claim": "C2", "verdict": f"tac {len(inside)}/{len(ratios)} models inside 3.4x-33.6x; best method "
                                          f"{len(best_in)}/{len(best)}",
                "measured": "tac: " + (", ".join(f"{m} {v:.2f}x" for m, v in ratios) or "no ratio measured")
                            + "; best method: " + (", ".join(f"{m} {b} {_x(v)}" for m, b, v in best) or "none")})
    logs = [(r["model"], r["rho_star"], r["ratio"]) for r in rows if r["rho_star"] is not None and r["ratio"]]
    close = [m for m, rho, ratio in logs if abs(math.log(rho / ratio)) <= math.log(1.5)]
    out.append({"claim": "C3", "verdict": f"{len(close)}/{len(logs)} models with rho* within 1.5x of the ratio",
                "measured": ", ".join(f"{m} rho* {rho:.2f} vs {ratio:.2f}" for m, rho, ratio in logs) or "-"})
    best = []
    for r in rows:
        if r["tac_minus_magnitude"]:
            b, (d, h) = max(r["tac_minus_magnitude"].items(), key=lambda kv: kv[1][0])
            best.append((r["model"], b, d, h))
    top = max((d for _, _, d, _ in best), default=float("nan"))
    out.append({"claim": "C4", "verdict": f"largest tac - magnitude {100 * top:+.1f} points (claimed up to +24)",
                "measured": ", ".join(f"{m} {100 * d:+.1f} +- {100 * h:.1f} pts at {b:g} b/w" for m, b, d, h in best)})
    n_cal = sorted({int(_num(_attrs(store, f"models/{s.name}")["n_calibration"])) for s in config.models
                    if f"models/{s.name}" in store})
    out.append({"claim": "C5", "verdict": "holds by construction",
                "measured": f"G_l from {'/'.join(map(str, n_cal))} unlabeled calibration images of the training split (labels never "
                            "read); corrections are 2^B-entry lookup tables applied at load, so the corrected "
                            "float32 weights run through the same forward pass; no retraining"})
    checks, fails = 0, []
    for label in ("symmetric", "asymmetric"):
        if f"claims/validate/{label}" in store:
            vr = validate_rows(store, label)
            checks += sum(r["status"] != "INFO" for r in vr)
            fails += [f"{label}: {r['check']} {r['quantity']}" for r in vr if r["status"] == "FAIL"]
    t5 = t5_rows_of(store, config)
    t5_fail = [r["check"] + " " + r["quantity"].split(",")[0] for r in t5 if r["status"] == "FAIL"]
    out.append({"claim": "C6", "verdict": f"{checks - len(fails)}/{checks} validate checks pass; "
                                          f"T5 {len(t5) - len(t5_fail)}/{len(t5)} pass",
                "measured": "; ".join(fails + t5_fail) or "every row within its tolerance"})
    return out


def _x(v) -> str:
    return "infinitely fewer (C = 0)" if math.isinf(v) else f"{v:.2f}x"


def _pct(v) -> str:
    return f"{100 * v:.1f} %"


# ------------------------------------------------------------------------------------------------- render
def render(store: RunStore, docs_dir: str | Path, *, run_file=None) -> Path:
    """Write the results page and its plots into ``docs_dir`` from the run file alone.

    The full protocol writes ``results.md`` and ``img/results_*.png``; the quick form writes
    ``results-quick.md`` and ``img/results-quick_*.png``, so the two pages live side by side.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    docs = Path(docs_dir)
    img = docs / "img"
    img.mkdir(parents=True, exist_ok=True)
    config = SweepConfig.from_json(store.config)
    quick = bool(config.extra.get("quick"))
    stem = "results-quick" if quick else "results"
    cmd = "python -m wkbnoise reproduce" + (" --quick" if quick else "")
    v = store.versions
    lines = ["# Results: the paper's claims on the wkbnoise zoo", "",
             f"Made by `{cmd}` from the committed zoo weights; every number and plot on this page is read from "
             f"the run file `{Path(run_file).name if run_file else 'reproduce.h5'}` that the command writes. "
             "Do not edit by hand: run the command again.", "",
             f"- Protocol: {describe(config, False)}; INT{config.bits} per tensor, two's complement, BN folded; "
             "symmetric flips on every plane of every quantized tensor, p = 0.10 (CNNs) and 0.05 (ViT); "
             f"target {100 * config.target:.0f} % of the INT8 accuracy; seed {config.seed}.",
             f"- Versions: {', '.join(f'{k} {v[k]}' for k in sorted(v) if k in ('wkbnoise', 'numpy', 'numba', 'python'))}"
             + (f"; threads {v.get('threads')}" if "threads" in v else "")]
    if quick:
        lines += ["", "**Quick form**: fewer trials and images than the paper protocol (30 trials x 1,000 images); "
                  "intervals are wider accordingly. `python -m wkbnoise reproduce` runs the full protocol."]
    lines += ["", "## The claims as measured", "", "| claim | paper | verdict here | measured |", "|---|---|---|---|"]
    paper = {"C1": "TAC keeps >= 95 % at p = 0.10 (CNNs) / 0.05 (ViT)", "C2": "3.4x - 33.6x fewer protected bits "
             "than uniform-msp", "C3": "rho* forecasts C_U / C_TAC", "C4": "WKB score beats magnitude by up to 24 "
             "points at tight budgets", "C5": "no retraining, no labels, no inference overhead",
             "C6": "the distributional theorems hold"}
    verdicts = claim_verdicts(store)
    for c in verdicts:
        lines.append(f"| {c['claim']} | {paper[c['claim']]} | {c['verdict']} | {c['measured']} |")
    rows = summary_rows(store)
    lines += ["", "## Summary per model", "", EXPLAIN + " Budgets are in protected data bits per weight; the last "
              "column is the accuracy of `tac` minus `magnitude` at 0.25 bits per weight with its 95 % half-width "
              "(each plan is the longest prefix of its method's path that fits the budget, so a plan may cost less "
              "than the budget: the tables show what each plan costs).", "",
              summary_table(rows, config.budgets, markdown=True), ""]
    by_model = {r["model"]: r for r in rows}
    for spec in config.models:
        if f"models/{spec.name}" not in store:
            continue
        fig = _plot_model(plt, store, config, spec, img, stem)
        s = by_model.get(spec.name)
        lines += [f"### {spec.name}", ""]
        if s is not None:
            lines += [f"Images: {s['n_images']}, {s['sample']}"
                      + (f"; per label {', '.join(f'{k}: {v}' for k, v in sorted(s['label_histogram'].items()))}."
                         if s["label_histogram"] else "."), "",
                      "| method | C [bracket] (bits/weight) | C_U / C | notes |", "|---|---|---|---|"]
            for m, c in s["crossings"].items():
                lines.append(f"| {m}{' (best)' if m == s['best'] else ''} | {_c(c)} | {_f(c['ratio'], '.2f')} | "
                             f"{_notes(c) or '-'} |")
            lines.append("")
        lines += [f"![{spec.name}: accuracy vs budget](img/{fig.name})", "",
                  "| method | bits/weight | mean | 95 % CI | trials | from |", "|---|---|---|---|---|---|"]
        for r in point_rows(store, spec.name, 0):
            src = f"grid {r['grid_budget']:g}" if r["grid"] else "crossing search"
            lines.append(f"| {r['method']} | {r['budget']:.4f} | {r['mean']:.4f} | "
                         f"[{r['lo']:.4f}, {r['hi']:.4f}] | {r['trials']} | {src} |"
                         + (f" {r['failed']} failed inferences |" if r["failed"] else ""))
        lines.append("")
    lines += ["## Theory against Monte Carlo (C6)", ""]
    for label in ("symmetric", "asymmetric"):
        if f"claims/validate/{label}" not in store:
            continue
        vr = validate_rows(store, label)
        rates = json.loads(_attrs(store, f"claims/validate/{label}")["rates"])
        n_test = sum(r["status"] != "INFO" for r in vr)
        n_pass = sum(r["status"] == "PASS" for r in vr)
        lines += [f"### validate, {label} rates (p_down = {rates['p_down'][0]:g}, p_up = {rates['p_up'][0]:g}): "
                  f"{n_pass}/{n_test} pass", "", "| check | quantity | theory | Monte Carlo | tolerance | status |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| {r['check']} | {r['quantity']} | {r['theory']:.6g} | {r['measured']:.6g} | "
                  f"{r['tolerance']:.3g} | {r['status']} |" for r in vr]
        lines.append("")
    if "claims/t12" in store:
        fig = _plot_t12(plt, store, img, stem)
        a = _attrs(store, "claims/t12")
        d = store.get("claims/t12")[1]
        share = d["plane_var_theory"][-1] / d["plane_var_theory"].sum()
        lines += ["### T1 and T2 per code", "", f"![T1/T2](img/{fig.name})", "",
                  f"Every INT8 code stored {int(_num(a['draws_per_code']))} times at p = {_num(a['p_flip']):g}: the "
                  f"mean of the read value follows `a q - p_up` (T1) and the variance `p(1-p)(4^B-1)/3` (T2); the "
                  f"sign plane carries {100 * share:.1f} % of the variance (theory), "
                  f"{100 * d['plane_var_mc'][-1] / d['plane_var_mc'].sum():.1f} % measured.", ""]
    if "claims/t3" in store:
        fig = _plot_t3(plt, store, img, stem)
        a = _attrs(store, "claims/t3")
        d = store.get("claims/t3")[1]
        total = d["counts"].sum()
        big = np.abs(d["error"]) >= 64
        sd = math.sqrt(_num(a["variance"]))
        from scipy.stats import norm

        gauss_big = float(2 * norm.sf(63.5, loc=0, scale=sd))
        lines += ["### T3: the exact error law of a real layer", "", f"![T3](img/{fig.name})", "",
                  f"`{a['model']}.{a['layer']}` ({int(_num(a['n_weights']))} INT8 weights, {int(_num(a['trials']))} "
                  f"trials at p = {_num(a['p_flip']):g}): P(|error| >= 64) measured "
                  f"{d['counts'][big].sum() / total:.4g}, exact law {d['exact'][big].sum():.4g}, Gaussian of the same "
                  f"variance {gauss_big:.4g}. The law is a lattice of MSB-led jumps, not a bell.", ""]
    t5 = t5_rows_of(store, config)
    if t5:
        fig = _plot_t5(plt, t5, img, stem)
        lines += ["### T5: predicted against measured output distortion", "", f"![T5](img/{fig.name})", "",
                  "| model | quantity | predicted | measured | tolerance | status | note |", "|---|---|---|---|---|---|---|"]
        lines += [f"| {r['check'][3:]} | {r['quantity']} | {r['theory']:.4g} | {r['measured']:.4g} | "
                  f"{r['tolerance']:.3g} | {r['status']} | {r['note']} |" for r in t5]
        lines += ["", _t5_text(store, config), ""]
    page = docs / f"{stem}.md"
    page.write_text("\n".join(lines) + "\n")
    return page


def _t5_text(store, config) -> str:
    """How the T5 rows were measured, from the first stored record."""
    name = next(spec.name for spec in config.models if f"claims/t5/{spec.name}" in store)
    a = _attrs(store, f"claims/t5/{name}")
    cal = (f"{int(_num(a['calibration']))} unlabeled test images held out from the measured ones (same distribution, "
           "never the same inputs)" if a.get("calibration_from") == "held-out test images"
           else "the zoo's calibration images (training split)")
    return (f"Predicted: `F(S)`, the first-order distortion `S` through the network's measured response `F`, with "
            f"`G_l` and `F` from {cal}. Measured: the mean over {int(_num(a['trials']))} trials of the output "
            f"distortion on {int(_num(a['n_images']))} stratified test images, with other fault draws. Tolerance: "
            "4.5 combined standard errors (the trials' spread, `F`'s jackknife, the `G_l` draws). The "
            "measured/first order ratio says how much the network's curvature adds to the linear prediction.")


def _plot_model(plt, store, config, spec, img: Path, stem: str = "results") -> Path:
    mattrs = _attrs(store, f"models/{spec.name}")
    n = int(np.sum(store.get(f"models/{spec.name}")[1]["n_weights"]))
    fig, ax = plt.subplots(figsize=(7, 4.2))
    rows = point_rows(store, spec.name, 0)
    for method in dict.fromkeys(r["method"] for r in rows):
        pts = sorted((r["cost_bits"] / n, r["mean"], r["lo"], r["hi"]) for r in rows if r["method"] == method)
        x = np.array([max(p[0], 1e-3) for p in pts])
        y = np.array([p[1] for p in pts])
        err = np.array([[p[1] - p[2] for p in pts], [p[3] - p[1] for p in pts]])
        ax.errorbar(x, y, yerr=err, marker="o", ms=3, capsize=2, lw=1, label=method)
    int8 = _num(mattrs["int8"])
    ax.axhline(int8, color="k", lw=0.8, ls=":", label="INT8 clean")
    ax.axhline(config.target * int8, color="r", lw=0.8, ls="--", label=f"{100 * config.target:.0f} % target")
    ax.set_xscale("log")
    ax.set_xlabel("protected data bits per weight (0 shown at 1e-3)")
    ax.set_ylabel(mattrs["metric"])
    ax.set_title(f"{spec.name} at {spec.rates[0].label}")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=7, ncol=2, loc="lower right")
    return _save(plt, fig, img / f"{stem}_{spec.name}.png")


def _save(plt, fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _plot_t12(plt, store, img: Path, stem: str = "results") -> Path:
    d = store.get("claims/t12")[1]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    axes[0].plot(d["value"], d["mean_theory"], "k-", lw=1, label="T1 theory")
    axes[0].plot(d["value"], d["mean_mc"], ".", ms=3, label="Monte Carlo")
    axes[0].set(xlabel="stored value q", ylabel="E[read value]", title="T1: affine mean drift")
    axes[1].plot(d["value"], d["var_theory"], "k-", lw=1, label="T2 theory")
    axes[1].plot(d["value"], d["var_mc"], ".", ms=3, label="Monte Carlo")
    axes[1].set(xlabel="stored value q", ylabel="Var[read value]", title="T2: variance per code")
    k = np.arange(d["plane_var_theory"].size)
    axes[2].bar(k - 0.2, d["plane_var_theory"], 0.4, label="T2 theory")
    axes[2].bar(k + 0.2, d["plane_var_mc"], 0.4, label="Monte Carlo")
    axes[2].set_yscale("log")
    axes[2].set(xlabel="bit plane (7 = sign)", ylabel="variance per plane [code units^2]",
                title="T2: MSB-led hierarchy")
    for ax in axes:
        ax.legend(fontsize=7)
    return _save(plt, fig, img / f"{stem}_t1_t2.png")


def _plot_t3(plt, store, img: Path, stem: str = "results") -> Path:
    a = _attrs(store, "claims/t3")
    d = store.get("claims/t3")[1]
    total = d["counts"].sum()
    from scipy.stats import norm

    sd = math.sqrt(_num(a["variance"]))
    e = d["error"]
    fig, ax = plt.subplots(figsize=(7, 4))
    nz = d["counts"] > 0
    ax.semilogy(e[nz], d["counts"][nz] / total, ".", ms=3, label="Monte Carlo")
    ax.semilogy(e, np.where(d["exact"] > 0, d["exact"], np.nan), "-", lw=0.6, label="exact law (T3)")
    ax.semilogy(e, norm.pdf(e, loc=_num(a["mean"]), scale=sd), "--", lw=1, label="Gaussian, same variance")
    ax.set_ylim(max(1e-9, 0.3 / total), 1)
    ax.set(xlabel="error q~ - q [code units]", ylabel="probability",
           title=f"T3 on {a['model']}.{a['layer']}, p = {_num(a['p_flip']):g}")
    ax.legend(fontsize=8)
    return _save(plt, fig, img / f"{stem}_t3.png")


def _plot_t5(plt, t5: list[dict], img: Path, stem: str = "results") -> Path:
    fig, ax = plt.subplots(figsize=(5, 4.2))
    for r in t5:
        ax.errorbar(r["theory"], r["measured"], yerr=r["tolerance"] / 4.5, fmt="o", ms=4, capsize=2,
                    label=r["check"][3:] + " " + r["quantity"].split(" at ")[1].split(",")[0])
    lo = min(min(r["theory"], r["measured"]) for r in t5) / 2
    hi = max(max(r["theory"], r["measured"]) for r in t5) * 2
    ax.plot([lo, hi], [lo, hi], "k:", lw=0.8)
    ax.set(xscale="log", yscale="log", xlabel="predicted D = sum s^2 G V", ylabel="measured E||z~ - z||^2",
           title="T5: output distortion")
    ax.legend(fontsize=6)
    return _save(plt, fig, img / f"{stem}_t5.png")

