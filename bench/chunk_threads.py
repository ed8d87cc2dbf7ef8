"""The forward pass's three thread settings side by side: chunks side by side, chunks in turn on BLAS's threads,
chunks in turn on one thread.

``python bench/chunk_threads.py [--quick] [--json]`` runs each zoo model's forward pass over the 1,000 bundled
test images (chunks of 200) in the three settings that ``wkbnoise.parallel.BlasTuner`` chooses among,
alternately in one process, and checks that the three outputs are bit-identical:

- ``chunks side by side``: ``model(x)`` (the default): the chunks on Numba's threads, one BLAS thread each;
- ``chunks in turn, BLAS threads``: ``model(x, threads=1)``, the matrix products on OpenBLAS's threads (the
  runtime's only setting before 2026-12-03);
- ``chunks in turn, one thread``: ``model(x, threads=1)`` with OpenBLAS limited to one thread.

``ratio`` = images/s over the second setting's. No PyTorch needed.
"""

from __future__ import annotations

import json as _json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from wkbnoise import zoo  # noqa: E402

MODELS = ("lenet5", "vgg", "resnet20", "mobilenetv2", "vit")
SETTINGS = ("chunks side by side", "chunks in turn, BLAS threads", "chunks in turn, one thread")


def _call(model, x, setting):
    if setting == SETTINGS[0]:
        return model(x)
    if setting == SETTINGS[1]:
        return model(x, threads=1)
    with threadpool_limits(limits=1, user_api="blas"):
        return model(x, threads=1)


def run(quick: bool = False, models=MODELS) -> list[dict]:
    """Rows: per model and setting, images/s (median of ``repeats`` alternating rounds)."""
    images, _ = zoo.test_set()
    repeats = 3 if quick else 7
    rows = []
    for name in models:
        model = zoo.load(name)
        x = model.preprocess(images)
        outs = {s: _call(model, x, s) for s in SETTINGS}  # warm-up, and the outputs compared
        same = all(np.array_equal(outs[SETTINGS[0]], o) for o in outs.values())
        times = {s: [] for s in SETTINGS}
        for _ in range(repeats):
            for s in SETTINGS:
                t0 = time.perf_counter()
                _call(model, x, s)
                times[s].append(time.perf_counter() - t0)
        rate = {s: [len(x) / t for t in times[s]] for s in SETTINGS}
        base = statistics.median(rate[SETTINGS[1]])
        for s in SETTINGS:
            med = statistics.median(rate[s])
            rows.append({"name": f"forward {name} (batch {len(x)}, chunks of {model.default_batch_size})",
                         "implementation": s, "unit": "images/s", "median": med, "min": min(rate[s]),
                         "max": max(rate[s]), "ratio": med / base, "baseline": SETTINGS[1], "identical": same})
    return rows


def main(quick: bool = False, json: bool = False, models: str = ",".join(MODELS)) -> None:
    """Print the rows (or with ``--json`` one JSON object)."""
    rows = run(bool(quick), [m for m in models.split(",") if m])
    if json:
        print(_json.dumps({"rows": rows}))
        return
    for r in rows:
        print(f"{r['name']:<44} {r['implementation']:<30} {r['median']:9.0f} images/s  {r['ratio']:.2f}x  "
              f"identical outputs: {r['identical']}")


if __name__ == "__main__":
    import fire

    fire.Fire(main)
