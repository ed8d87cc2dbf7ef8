"""Winograd F(2x2, 3x3) against im2col + GEMM: per 3 x 3 layer, and whole forward passes and trials.

``python bench/winograd.py [--rounds 5] [--out bench/results/winograd.json]`` (run it with
``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE`` unset in its command). Both ways run in this one process and
take turns, round by round, so that drift on a shared machine hits both alike:

- **layers**: one 3 x 3, stride-1, padding-1 convolution on one thread (the setting of the chunks and
  trials that run side by side), ``layers.conv2d_cnhw`` with Winograd switched off against
  ``layers.conv3x3_winograd_cnhw``, at the zoo's shapes (batch 200, the default chunk) and ResNet-18's
  (8 and 3 images of 224 x 224 give 56 .. 7 sides; 3 is a chunk of ResNet-18 side by side), below and above
  the thresholds;
- **forward**: ``model(x)`` of the 1,000 bundled test images on two threads, zoo models whose layers
  cross the thresholds (vgg, resnet20);
- **trials**: ``Evaluator.run`` of six trials at ``p_flip = 0.1``, four protected planes per layer, 1,000
  images (the campaign's and the crossing search's unit of work).

Rows: the median milliseconds (or seconds per trial) of each way and their ratio (im2col / Winograd,
> 1: Winograd is faster), and for the models whether the predictions (and trial accuracies) are the same.
"""

from __future__ import annotations

import json as _json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
for _p in (str(ROOT), str(BENCH)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

#: (input channels, output channels, side, images): the zoo's 3 x 3 layers at a chunk of 200, ResNet-18's
#: at 8 images of 224 x 224
LAYERS = ((16, 16, 28, 200), (32, 32, 14, 200), (64, 64, 7, 200), (32, 32, 28, 200), (32, 64, 14, 200),
          (64, 64, 14, 200), (64, 64, 56, 8), (128, 128, 28, 8), (256, 256, 14, 8), (512, 512, 7, 8),
          (64, 64, 56, 3), (128, 128, 28, 3), (256, 256, 14, 3), (32, 32, 28, 1), (64, 64, 56, 1))


def _median_ms(fn, reps: int = 3) -> float:
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(out)


def layer_rows(rounds: int) -> list[dict]:
    from threadpoolctl import threadpool_limits

    from wkbnoise.runtime import layers

    rng = np.random.default_rng(0)
    rows = []
    with threadpool_limits(1):
        for c, o, side, n in LAYERS:
            x = rng.standard_normal((c, n, side, side)).astype(np.float32)
            w = (rng.standard_normal((o, c, 3, 3)) / np.sqrt(9 * c)).astype(np.float32)
            b = rng.standard_normal(o).astype(np.float32)
            bufs_i, bufs_w = {}, {}

            def im2col(x=x, w=w, b=b, bufs_i=bufs_i):
                return layers.conv2d_cnhw(x, w, b, padding=1, buffers=bufs_i, bands=True)

            def wino(x=x, w=w, b=b, bufs_w=bufs_w):
                return layers.conv3x3_winograd_cnhw(x, w, b, padding=(1, 1), buffers=bufs_w)

            saved = layers.WINOGRAD_MIN_CHANNELS
            layers.WINOGRAD_MIN_CHANNELS = 1 << 30
            try:
                ref, got = im2col(), wino()
                t_i, t_w = [], []
                for _ in range(rounds):
                    t_i.append(_median_ms(im2col))
                    t_w.append(_median_ms(wino))
            finally:
                layers.WINOGRAD_MIN_CHANNELS = saved
            pays = layers._winograd_pays(c, n, o, side, side)
            mi, mw = statistics.median(t_i), statistics.median(t_w)
            rows.append({"layer": f"{c}->{o} at {side}x{side}, {n} images", "im2col_ms": mi, "winograd_ms": mw,
                         "ratio": mi / mw, "winograd_chosen": bool(pays),
                         "max_rel_diff": float(np.abs(got - ref).max() / np.abs(ref).max())})
            print(f"{rows[-1]['layer']:<32} im2col {mi:8.2f} ms  winograd {mw:8.2f} ms  {mi / mw:5.2f}x"
                  f"  {'chosen' if pays else 'not chosen'}", flush=True)
    return rows


def model_rows(rounds: int, models=("vgg", "resnet20")) -> list[dict]:
    from wkbnoise import FlipRates, zoo
    from wkbnoise.evaluation.campaign import Evaluator
    from wkbnoise.runtime import layers

    images, labels = zoo.test_set()
    rates = FlipRates.symmetric(0.1, 8)
    saved = layers.WINOGRAD_MIN_CHANNELS
    rows = []
    for name in models:
        model = zoo.load(name)
        x = model.preprocess(images)
        ev = Evaluator(model, images, labels, bits=8)
        plan = {n: 4 for n in ev.names}
        fwd = {"im2col": [], "winograd": []}
        trial = {"im2col": [], "winograd": []}
        logits, acc = {}, {}
        try:
            for r in range(rounds):
                for way in ("winograd", "im2col"):
                    layers.WINOGRAD_MIN_CHANNELS = saved if way == "winograd" else 1 << 30
                    if r == 0:
                        logits[way] = model(x)
                        ev.run(rates, method="tac", plan=plan, trials=2, point=(0,))  # warm: the tuner's probe
                    fwd[way].append(_median_ms(lambda: model(x), 2))
                    t0 = time.perf_counter()
                    res = ev.run(rates, method="tac", plan=plan, trials=6, point=(1, r))
                    trial[way].append((time.perf_counter() - t0) / 6)
                    acc.setdefault(way, []).extend(np.asarray(res.accuracy).tolist())
        finally:
            layers.WINOGRAD_MIN_CHANNELS = saved
        fi, fw = statistics.median(fwd["im2col"]), statistics.median(fwd["winograd"])
        ti, tw = statistics.median(trial["im2col"]), statistics.median(trial["winograd"])
        same_pred = bool(np.array_equal(logits["im2col"].argmax(1), logits["winograd"].argmax(1)))
        rows.append({"model": name, "forward_im2col_ms": fi, "forward_winograd_ms": fw, "forward_ratio": fi / fw,
                     "trial_im2col_s": ti, "trial_winograd_s": tw, "trial_ratio": ti / tw,
                     "same_predictions": same_pred, "same_trial_accuracies": acc["im2col"] == acc["winograd"],
                     "max_rel_logit_diff": float(np.abs(logits["winograd"] - logits["im2col"]).max()
                                                 / np.abs(logits["im2col"]).max())})
        print(f"{name:<10} forward (1,000 images) im2col {fi:8.1f} ms  winograd {fw:8.1f} ms  {fi / fw:5.2f}x | "
              f"trial {ti:.3f} s vs {tw:.3f} s  {ti / tw:5.2f}x | same predictions {same_pred}, same trial "
              f"accuracies {rows[-1]['same_trial_accuracies']}", flush=True)
    return rows


def main(rounds: int = 5, out: str | None = None) -> int:
    """Print the rows and write them to ``out`` (default ``bench/results/winograd.json``)."""
    from run import _blas_info

    blas = _blas_info()
    print(f"BLAS: {blas}")
    t0 = time.perf_counter()
    result = {"blas": blas, "rounds": int(rounds), "layers": layer_rows(int(rounds)),
              "models": model_rows(max(2, int(rounds) // 2))}
    result["seconds"] = time.perf_counter() - t0
    path = Path(out) if out else BENCH / "results" / "winograd.json"
    path.write_text(_json.dumps(result, indent=1))
    print(f"wrote {path} ({result['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    import fire

    fire.Fire(main)
