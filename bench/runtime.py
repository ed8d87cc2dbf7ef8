"""Forward-pass throughput of each zoo model: the wkbnoise runtime beside PyTorch CPU, batch 1,000 and 1.

``python bench/runtime.py [--quick] [--json]`` (needs the ``bench`` extra: torch). Both sides read the same
weight file (the zoo's, BN folded on both sides), run the 1,000 bundled test images as one batch with every
thread of this process, and are timed alternately, side by side, in the same run; then 100 single-image
forwards (batch 1, the latency an edge script sees). ``ratio`` = wkbnoise
images/s over PyTorch images/s (> 1: the runtime is faster). ``run(quick)`` returns the rows for
``bench/run.py`` (part 2).
"""

from __future__ import annotations

import json as _json
import statistics
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

from campaign_torch import build_torch_model, load_images, model_file, preprocess  # noqa: E402

MODELS = ("lenet5", "vgg", "resnet20", "mobilenetv2", "vit")
UNIT = "images/s"


def _times(fn, repeats: int) -> list[float]:
    fn()  # warm-up: compilation, allocator, page faults
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def run(quick: bool = False, models=MODELS) -> list[dict]:
    """Rows: per model, the runtime and PyTorch forward throughput and their ratio."""
    from wkbnoise.runtime import load_model

    repeats = 3 if quick else 7
    images, _, source = load_images(1000)
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for name in models:
            path, weights = model_file(name, scratch)
            model = load_model(path)
            x_np = model.preprocess(images)
            tm = build_torch_model(path)
            x_t = preprocess(images)
            with torch.no_grad():
                ref = tm(x_t).numpy()
            got = model(x_np)
            err = float(np.max(np.abs(got - ref)) / np.max(np.abs(ref)))

            def ours():
                model(x_np)

            def theirs():
                with torch.no_grad():
                    tm(x_t)

            t_ours, t_theirs = [], []
            for _ in range(2):  # interleave so drift on a shared machine hits both sides alike
                t_ours += _times(ours, (repeats + 1) // 2)
                t_theirs += _times(theirs, (repeats + 1) // 2)
            n = len(images)
            speed_t = [n / t for t in t_theirs]
            speed_o = [n / t for t in t_ours]
            common = {"name": f"forward {name} (batch {n})", "unit": UNIT, "group": f"forward {name}",
                      "weights": weights, "images": source, "threads": torch.get_num_threads()}
            rows.append({**common, "implementation": "pytorch", "median": statistics.median(speed_t),
                         "min": min(speed_t), "max": max(speed_t), "baseline": None, "ratio": None})
            rows.append({**common, "implementation": "wkbnoise", "median": statistics.median(speed_o),
                         "min": min(speed_o), "max": max(speed_o), "baseline": "pytorch",
                         "ratio": statistics.median(speed_o) / statistics.median(speed_t),
                         "max_rel_logit_err": err})
            rows += _batch_one(name, model, tm, x_np[:1], x_t[:1], repeats, weights, source)
    return rows


def _batch_one(name, model, tm, x1_np, x1_t, repeats: int, weights: str, source: str,
               calls: int = 100) -> list[dict]:
    """Batch 1, the latency an edge script sees: images/s = ``calls`` single-image forwards over their time."""

    def ours():
        for _ in range(calls):
            model(x1_np)

    def theirs():
        with torch.no_grad():
            for _ in range(calls):
                tm(x1_t)

    t_ours, t_theirs = [], []
    for _ in range(2):
        t_ours += _times(ours, (repeats + 1) // 2)
        t_theirs += _times(theirs, (repeats + 1) // 2)
    speed_o = [calls / t for t in t_ours]
    speed_t = [calls / t for t in t_theirs]
    common = {"name": f"forward {name} (batch 1)", "unit": UNIT, "group": f"forward {name} batch 1",
              "weights": weights, "images": source, "threads": torch.get_num_threads(), "calls": calls}
    return [{**common, "implementation": "pytorch", "median": statistics.median(speed_t), "min": min(speed_t),
             "max": max(speed_t), "baseline": None, "ratio": None},
            {**common, "implementation": "wkbnoise", "median": statistics.median(speed_o), "min": min(speed_o),
             "max": max(speed_o), "baseline": "pytorch",
             "ratio": statistics.median(speed_o) / statistics.median(speed_t)}]


def _table(rows) -> str:
    lines = [f"{'model':<34} {'implementation':<10} {'images/s':>10} {'min':>10} {'max':>10} {'ratio':>7}"]
    for r in rows:
        ratio = "" if r["ratio"] is None else f"{r['ratio']:.2f}x"
        lines.append(f"{r['name']:<34} {r['implementation']:<10} {r['median']:>10.0f} {r['min']:>10.0f} "
                     f"{r['max']:>10.0f} {ratio:>7}")
    return "\n".join(lines)


def main(quick: bool = False, json: bool = False, models: str = ",".join(MODELS)) -> None:
    """Print the table (or with ``--json`` one JSON object)."""
    names = [m for m in (models.split(",") if isinstance(models, str) else models) if m]
    rows = run(bool(quick), names)
    if json:
        print(_json.dumps({"rows": rows}))
    else:
        print(_table(rows))


if __name__ == "__main__":
    import fire

    fire.Fire(main)
