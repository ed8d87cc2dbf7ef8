"""Where the time of a wkbnoise campaign goes: profile, setup share, chunk-size sweep, paired with PyTorch.

Usage::

    python bench/profile_campaign.py lenet5 [--p 0.01] [--trials 10] [--threads 1] [--sweep]

Prints (all at the same thread count for Numba, NumPy's BLAS and PyTorch):

1. the split of one ``monte_carlo_accuracy`` call into its setup (``Evaluator``: quantize, prepare,
   two clean forward passes) and its trials;
2. a cProfile of the call, grouped by the runtime function that holds the time;
3. with ``--sweep``: trials/s of ``Evaluator.run`` for several forward chunk sizes, next to the
   hand-written PyTorch campaign, alternated call by call so that both see the same machine load.

It is a diagnostic for docs/performance.md ("Where the time goes"); it changes nothing.
"""

from __future__ import annotations

import cProfile
import pstats
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
for _p in (str(BENCH.parent), str(BENCH)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

import numpy as np  # noqa: E402

from campaign_torch import TorchCampaign, build_torch_model, load_images, model_file  # noqa: E402
from run import n_threads  # noqa: E402


def main(model: str, p: float = 0.01, trials: int = 10, threads: int = 1, sweep: bool = False) -> None:
    """Where a wkbnoise campaign's time goes, stage by stage (MODEL: a zoo name)."""
    from types import SimpleNamespace

    a = SimpleNamespace(model=model, p=float(p), trials=int(trials), threads=int(threads), sweep=bool(sweep))

    from wkbnoise import FlipRates
    from wkbnoise.evaluation.campaign import Evaluator, monte_carlo_accuracy
    from wkbnoise.runtime import load_model

    path, origin = model_file(a.model, tempfile.mkdtemp())
    model = load_model(path)
    images, labels, src = load_images()
    rates = FlipRates.symmetric(a.p, 8)
    print(f"{a.model} ({origin} weights, {src} images), p={a.p}, {a.trials} trials, {a.threads} thread(s)")
    with n_threads(a.threads):
        monte_carlo_accuracy(model, images, labels, rates, trials=1, seed=99)  # compile, warm caches
        t0 = time.perf_counter()
        ev = Evaluator(model, images, labels)
        t1 = time.perf_counter()
        ev.run(rates, trials=a.trials, seed=0)
        t2 = time.perf_counter()
        per_trial = (t2 - t1) / a.trials
        print(f"setup (Evaluator: quantize, prepare, 2 clean forwards): {t1 - t0:.3f} s "
              f"= {(t1 - t0) / per_trial:.1f} trials; trials: {per_trial * 1e3:.1f} ms each")

        prof = cProfile.Profile()
        prof.enable()
        monte_carlo_accuracy(model, images, labels, rates, trials=a.trials, seed=0)
        prof.disable()
        st = pstats.Stats(prof)
        total = sum(v[2] for v in st.stats.values())  # tottime sum
        rows = sorted(((v[2], f"{Path(k[0]).parent.name}/{Path(k[0]).name}:{k[2]}") for k, v in st.stats.items()),
                      reverse=True)
        print(f"cProfile, tottime by function ({total:.2f} s in all):")
        for tt, where in rows[:12]:
            print(f"  {tt:7.3f} s  {100 * tt / total:5.1f} %  {where}")

        if a.sweep:
            torch_camp = TorchCampaign(build_torch_model(path), images, labels)
            torch_camp.run(a.p, 1)
            sizes = [32, 64, 128, model.default_batch_size, len(images)]
            evs = {bs: Evaluator(model, images, labels, batch_size=bs) for bs in dict.fromkeys(sizes)}
            speeds = {f"wkbnoise batch {bs}": [] for bs in evs} | {"torch-hand (batch 1000)": []}
            for rep in range(3):
                for bs, e in evs.items():
                    t = time.perf_counter()
                    e.run(rates, trials=a.trials, seed=rep)
                    speeds[f"wkbnoise batch {bs}"].append(a.trials / (time.perf_counter() - t))
                t = time.perf_counter()
                torch_camp.run(a.p, a.trials, seed=rep)
                speeds["torch-hand (batch 1000)"].append(a.trials / (time.perf_counter() - t))
            print("trials/s (median of 3, trials only: Evaluator setup excluded; torch includes its quantize):")
            for k, v in speeds.items():
                print(f"  {k:<26} {np.median(v):8.3f}  (min {min(v):.3f}, max {max(v):.3f})")


if __name__ == "__main__":
    import fire

    fire.Fire(main)
