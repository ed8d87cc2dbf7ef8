"""One campaign in this process and on local Dask clusters of 1, 2, ... workers: wall times, and the run
files compared record by record (they must be identical).

Usage::

    python bench/scale_out.py [--model lenet5] [--workers 0,1,2] [--trials 30] [--images 1000]
                              [--budgets 0.5,1,2] [--methods none,magnitude,tac] [--p-flip 0.02] [--json]

``0`` in ``--workers`` is the in-process run (no Dask, every thread). For each setting the campaign runs
into a fresh run file; ``trials_s`` is the time spent waiting for trials (the part that Dask farms out),
``total_s`` the whole ``run_sweep`` (sensitivities ``G_l`` and the predictions run in the client either
way), ``start_s`` the cluster start-up. The load average before and after each run is recorded: on a
shared machine the figures say little.
"""

from __future__ import annotations

import json as _json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from wkbnoise.evaluation.config import ModelSpec, RateSpec, SweepConfig  # noqa: E402
from wkbnoise.evaluation.executor import open_executor  # noqa: E402
from wkbnoise.evaluation.store import RunStore  # noqa: E402
from wkbnoise.evaluation.sweep import run_sweep  # noqa: E402


class _Timed:
    """An executor that adds up the time spent inside ``trials`` (waiting for trial results)."""

    def __init__(self, inner):
        self.inner, self.seconds = inner, 0.0

    def describe(self) -> str:
        return self.inner.describe()

    def trials(self, recipe, ev, requests):
        it = self.inner.trials(recipe, ev, requests)
        while True:
            t0 = time.perf_counter()
            try:
                item = next(it)
            except StopIteration:
                self.seconds += time.perf_counter() - t0
                return
            self.seconds += time.perf_counter() - t0
            yield item


def _same(a: RunStore, b: RunStore) -> bool:
    if sorted(a.records) != sorted(b.records):
        return False
    return all(np.array_equal(a.records[k][1][d], b.records[k][1][d], equal_nan=True)
               for k in a.records for d in a.records[k][1])


def _blas() -> str:
    try:
        import threadpoolctl
    except ImportError:
        return "unknown"
    info = [i for i in threadpoolctl.threadpool_info() if i.get("user_api") == "blas"]
    return ", ".join(f"{i.get('internal_api')} {i.get('version')} {i.get('architecture')}" for i in info)


def run(model="lenet5", workers=(0, 1, 2), trials=30, images=1000, budgets=(0.5, 1.0, 2.0),
        methods=("none", "magnitude", "tac"), p_flip=0.02) -> dict:
    """Run the campaign once per entry of ``workers``; returns the rows and the machine."""
    config = SweepConfig(models=(ModelSpec(model, (RateSpec.symmetric(float(p_flip)),)),),
                         methods=tuple(methods), budgets=tuple(float(b) for b in budgets), trials=int(trials),
                         n_images=int(images))
    rows, first = [], None
    with tempfile.TemporaryDirectory(prefix="wkbnoise-scale-") as tmp:
        for n in workers:
            load0 = os.getloadavg()[0]
            t0 = time.perf_counter()
            with open_executor(workers=None if int(n) == 0 else int(n)) as ex:
                start = time.perf_counter() - t0
                timed = _Timed(ex)
                t1 = time.perf_counter()
                store = run_sweep(config, Path(tmp) / f"w{n}.h5", progress=False, executor=timed)
                total = time.perf_counter() - t1
            first = first or store
            rows.append({"workers": int(n), "where": "in-process" if int(n) == 0 else f"{n} Dask workers",
                         "start_s": start, "total_s": total, "trials_s": timed.seconds,
                         "points": len(store.keys("points/")), "identical_to_first": _same(first, store),
                         "load_before": load0, "load_after": os.getloadavg()[0]})
    return {"rows": rows, "cpus": os.cpu_count(), "blas": _blas(), "config": _json.loads(config.to_json())}


def main(model="lenet5", workers="0,1,2", trials=30, images=1000, budgets="0.5,1,2",
         methods="none,magnitude,tac", p_flip=0.02, json=False) -> None:
    """Print a table (or with ``--json`` one JSON object)."""
    def items(v):
        if isinstance(v, str):
            return [x for x in v.split(",") if x]
        return list(v) if isinstance(v, list | tuple) else [v]

    out = run(model, [int(w) for w in items(workers)], int(trials), int(images),
              [float(b) for b in items(budgets)], items(methods), float(p_flip))
    if json:
        print(_json.dumps(out))
        return
    print(f"{model}: {trials} trials x {images} images per point, p = {p_flip}; {out['cpus']} CPUs; "
          f"BLAS {out['blas']}")
    print(f"{'run':<16} {'start s':>8} {'trials s':>9} {'total s':>8} {'points':>7} {'same numbers':>13} "
          f"{'load':>11}")
    for r in out["rows"]:
        print(f"{r['where']:<16} {r['start_s']:>8.1f} {r['trials_s']:>9.1f} {r['total_s']:>8.1f} "
              f"{r['points']:>7} {str(r['identical_to_first']):>13} "
              f"{r['load_before']:>5.1f}-{r['load_after']:<5.1f}")


if __name__ == "__main__":
    import fire

    fire.Fire(main)
