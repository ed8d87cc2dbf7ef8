"""Time to an answer: from the command to ``C_TAC``, wkbnoise's statistical crossing against a PyTorch sweep.

The user's real cost is the time until the tool says "C bits per weight keep 95 %". Per model:

- **wkbnoise**: ``python -m wkbnoise eval MODEL --methods tac --trials 10 --images N --out RUN.h5 --json``
  in a fresh process, timed from start to exit: it quantizes, measures ``G_l`` and ``F``, walks the nested
  ``tac`` and ``uniform-msp`` paths, and adds trials at a point (10 to 40) until its 95 % interval clears the
  target (0.95 x the INT8 accuracy).
- **hand-written PyTorch**: the same sweep with fixed trials, as a careful user writes it: for every budget
  that wkbnoise measured on the two paths, 30 trials (the paper protocol) of exact per-bit flips on the
  unprotected planes (``torch.rand < p`` per bit, masked, XOR) and the same per-plane lookup tables, then
  ``C`` = the smallest budget whose mean reaches the target. Its plans and tables are *given* to it (built
  untimed with the library from the run file's ``G_l``), and it is told which budgets to measure: both
  favour the PyTorch side.

``ratio`` = PyTorch seconds over wkbnoise seconds (> 1: wkbnoise answers sooner). ``run(quick)`` returns the
rows for ``bench/run.py`` (part 7); ``python bench/time_to_answer.py [--quick] [--models vgg,resnet20]``
prints them.
"""

from __future__ import annotations

import copy
import json as _json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

BENCH = Path(__file__).resolve().parent
for _p in (str(BENCH.parent), str(BENCH)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from campaign_torch import (  # noqa: E402
    build_torch_model,
    load_images,
    model_file,
    preprocess,
    quant_modules,
    quantize_int8,
)

MODELS = ("vgg", "resnet20")
P_FLIP = 0.1
TORCH_TRIALS = 30
START_TRIALS = 10


def wkbnoise_answer(path: Path, n_images: int, scratch: Path) -> tuple[float, dict]:
    """Wall time [s] of the ``eval`` command and its JSON answer."""
    out = scratch / f"{path.stem}-{n_images}.h5"
    cmd = [sys.executable, "-m", "wkbnoise", "eval", str(path), "--methods", "tac", "--p-flip", str(P_FLIP),
           "--trials", str(START_TRIALS), "--images", str(n_images), "--out", str(out), "--json"]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"eval exited {done.returncode}: {done.stderr.strip().splitlines()[-1:]}")
    answer = _json.loads(done.stdout)
    answer["run_file_path"] = str(out)
    return wall, answer


def sweep_plans(path: Path, answer: dict, images: np.ndarray) -> list[dict]:
    """Per measured point of the answer: method, budget, protected planes per layer and the lookup tables.

    Built with the library from the run file's ``G_l``, exactly as ``eval`` built them (untimed: given to
    the PyTorch side).
    """
    import h5py

    from wkbnoise import FlipRates
    from wkbnoise.allocation import LUT_OF_METHOD, budget_path
    from wkbnoise.correction import build_lut
    from wkbnoise.evaluation.campaign import Evaluator
    from wkbnoise.runtime import load_model

    model = load_model(path)
    ev = Evaluator(model, images, None, bits=8)
    name = answer["models"][0]["model"]
    with h5py.File(answer["run_file_path"], "r") as f:
        g = np.asarray(f[f"models/{name}/G"])
    rates = FlipRates.symmetric(P_FLIP, 8)
    stats = ev.layer_stats(rates, dict(zip(ev.names, g.tolist(), strict=True)))
    paths = {}
    out = []
    for pt in answer["models"][0]["points"]:
        method = pt["method"]
        if method not in paths:
            paths[method] = budget_path(method, stats, seed=answer["config"].get("seed", 0))
        plan = paths[method].plan(int(pt["step"]))
        luts = {}
        for n in ev.names:
            m = int(plan.get(n, 0))
            r = rates.protect_top(m)
            lut = build_lut(r, ev.scale(n), method="none" if m == 8 else LUT_OF_METHOD[method])
            luts[n] = (m, torch.from_numpy(np.ascontiguousarray(lut, dtype=np.float32)))
        out.append({"method": method, "budget": float(pt["budget"]), "luts": luts, "wkbnoise_mean": pt["mean"],
                    "wkbnoise_trials": int(pt["trials"])})
    return out


def torch_sweep(path: Path, images: np.ndarray, labels: np.ndarray, plans: list[dict], goal: float,
                trials: int = TORCH_TRIALS, seed: int = 0) -> tuple[float, dict]:
    """Seconds for the PyTorch sweep of ``plans`` at ``trials`` fixed trials each, and its answer."""
    bits = 8
    t0 = time.perf_counter()
    model = copy.deepcopy(build_torch_model(path))
    x = preprocess(images)
    y = torch.from_numpy(labels)
    layers = []
    for name, m in quant_modules(model):
        codes, _ = quantize_int8(m.weight.data, bits)
        layers.append((name + ".weight", m, codes.reshape(-1).view(torch.uint8)))
    gen = torch.Generator().manual_seed(seed)
    shifts = torch.arange(bits, dtype=torch.uint8)
    means = []
    with torch.no_grad():
        for plan in plans:
            acc = []
            for _ in range(trials):
                for name, m, codes in layers:
                    keep, lut = plan["luts"][name]
                    if keep >= bits:
                        read = codes
                    else:
                        hits = torch.rand((codes.numel(), bits - keep), generator=gen) < P_FLIP
                        mask = (hits.to(torch.uint8) << shifts[: bits - keep]).sum(dim=1, dtype=torch.uint8)
                        read = codes ^ mask
                    m.weight.copy_(lut[read.long()].view_as(m.weight))
                acc.append((model(x).argmax(dim=1) == y).double().mean().item())
            means.append(float(np.mean(acc)))
    wall = time.perf_counter() - t0
    answer = {}
    for method in dict.fromkeys(p["method"] for p in plans):
        reached = sorted(p["budget"] for p, mu in zip(plans, means, strict=True)
                         if p["method"] == method and mu >= goal)
        answer[method] = reached[0] if reached else None
    return wall, {"c": answer, "means": means}


def run(quick: bool = False, models=MODELS) -> list[dict]:
    """Rows: per model, wkbnoise's and PyTorch's seconds to the answer and their ratio."""
    n_images = 500 if quick else 1000
    models = ("vgg",) if quick else tuple(models)
    images, labels, source = load_images(1000)
    from wkbnoise.evaluation.sampling import sample_indices

    pick = sample_indices(len(images), n_images, labels=labels, seed=0)
    images, labels = images[pick], labels[pick]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        for name in models:
            path, weights = model_file(name, scratch)
            wall_w, answer = wkbnoise_answer(path, n_images, scratch)
            summary = answer["summary"][0]
            plans = sweep_plans(path, answer, images)
            wall_t, theirs = torch_sweep(path, images, labels, plans, float(summary["goal"]))
            group = f"time to C_TAC {name}"
            trials_w = sum(p["wkbnoise_trials"] for p in plans)
            common = {"name": f"{group} ({n_images} images, p={P_FLIP})", "unit": "s", "group": group,
                      "weights": weights, "images": source, "higher_is_better": False, "points": len(plans)}
            rows.append({**common, "implementation": "pytorch-sweep", "median": wall_t, "min": wall_t,
                         "max": wall_t, "baseline": None, "ratio": None, "trials": TORCH_TRIALS * len(plans),
                         "c_tac": theirs["c"].get("tac"), "c_u": theirs["c"].get("uniform-msp")})
            rows.append({**common, "implementation": "wkbnoise", "median": wall_w, "min": wall_w, "max": wall_w,
                         "baseline": "pytorch-sweep", "ratio": wall_t / wall_w, "trials": trials_w,
                         "c_tac": summary.get("c_tac"), "c_tac_bracket": summary.get("tac_bracket"),
                         "c_u": summary.get("c_u")})
    return rows


def main(quick: bool = False, json: bool = False, models: str = ",".join(MODELS)) -> None:
    """Print the rows (or with ``--json`` one JSON object)."""
    names = [m for m in (models.split(",") if isinstance(models, str) else models) if m]
    rows = run(bool(quick), names)
    if json:
        print(_json.dumps({"rows": rows}, default=str))
        return
    for r in rows:
        ratio = "" if r["ratio"] is None else f"{r['ratio']:.2f}x"
        print(f"{r['name']:<44} {r['implementation']:<14} {r['median']:8.1f} s  {r['trials']:5d} trials  "
              f"C_TAC {r['c_tac']}  C_U {r['c_u']}  {ratio}")


if __name__ == "__main__":
    import fire

    fire.Fire(main)
