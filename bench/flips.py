"""Flip-and-dequantize throughput: wkbnoise's fused kernel vs the obvious NumPy version vs a plain copy.

``python bench/flips.py [--quick] [--json]`` prints, for p in {1e-6, 1e-3, 1e-2, 0.1} (symmetric, 8-bit
codes), the throughput in millions of codes per second of

- ``numpy``: ``hit = rng.random((n, 8)) < p``, ``mask = np.packbits(hit, axis=1, bitorder="little")``,
  ``out = lut[codes ^ mask]`` (one thread: NumPy does not parallelise these);
- ``kernel-1t`` / ``kernel-all``: :func:`wkbnoise.faults.flip_dequantize` into a preallocated float32
  buffer, with 1 thread and with every Numba thread;
- the memory ceiling: ``copy-codes`` (``np.copyto`` of the n code bytes) and ``copy-weights``
  (``np.copyto`` of n float32 weights, the bytes the fused kernel must write).

All rows are measured side by side in one run. ``run(quick)`` returns the rows for ``bench/run.py``.
"""

from __future__ import annotations

import json as _json
import statistics
import sys
import time
from pathlib import Path

import numba
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from wkbnoise import FlipRates, threads  # noqa: E402
from wkbnoise.faults import choose_method, flip_dequantize  # noqa: E402

P_VALUES = (1e-6, 1e-3, 1e-2, 0.1)
UNIT = "Mcodes/s"


def _time(fn, n: int, repeats: int) -> tuple[float, float, float]:
    fn()                                    # warm-up (compilation, page faults)
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        rates.append(n / (time.perf_counter() - t0) / 1e6)
    return statistics.median(rates), min(rates), max(rates)


def numpy_flip_dequantize(codes: np.ndarray, p: float, lut: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The obvious NumPy version: one uniform per bit, pack the hits into a mask, XOR, table."""
    hit = rng.random((codes.size, 8)) < p
    mask = np.packbits(hit, axis=1, bitorder="little")[:, 0]
    return lut[codes ^ mask]


def run(quick: bool = False) -> list[dict]:
    """Measure every row; ``quick`` uses 2^20 codes and 3 repeats instead of 2^23 and 7."""
    n = 1 << (20 if quick else 23)
    repeats = 3 if quick else 7
    all_threads = numba.config.NUMBA_NUM_THREADS
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 256, n, dtype=np.uint8)
    lut = (np.arange(256, dtype=np.float32) - 128.0) * np.float32(0.01)
    out = np.empty(n, dtype=np.float32)
    rows: list[dict] = []

    def row(name, impl, stats, baseline=None, base_stats=None, **extra):
        med, lo, hi = stats
        rows.append({"name": name, "implementation": impl, "unit": UNIT, "median": med, "min": lo, "max": hi,
                     "ratio": (med / base_stats[0]) if base_stats else None, "baseline": baseline, **extra})

    codes_copy = np.empty_like(codes)
    w_src = np.empty(n, dtype=np.float32)
    w_src[:] = 1.0
    copy_codes = _time(lambda: np.copyto(codes_copy, codes), n, repeats)
    copy_weights = _time(lambda: np.copyto(out, w_src), n, repeats)
    row("copy codes (n bytes)", "copy-codes", copy_codes)
    row("copy weights (4n bytes)", "copy-weights", copy_weights)
    for p in P_VALUES:
        rates = FlipRates.symmetric(p, bits=8)
        label = f"p={p:g}"
        np_stats = _time(lambda p=p: numpy_flip_dequantize(codes, p, lut, rng), n, repeats)
        row(label, "numpy", np_stats, threads=1)
        for impl, n_threads in (("kernel-1t", 1), ("kernel-all", all_threads)):
            with threads(n_threads):
                stats = _time(lambda rates=rates: flip_dequantize(codes, rates, lut, 12345, out), n, repeats)
            row(label, impl, stats, baseline=f"{label} numpy", base_stats=np_stats, threads=n_threads,
                sampler=choose_method(rates),
                copy_weights_ratio=copy_weights[0] / stats[0], copy_codes_ratio=copy_codes[0] / stats[0])
    return rows


def _table(rows: list[dict]) -> str:
    head = (f"{'case':<24} {'implementation':<13} {'thr':>3} {'sampler':<7} {'median':>9} {'min':>9} {'max':>9}  "
            f"{'x numpy':>8} {'copy-w/x':>9} {'copy-c/x':>9}")
    lines = [f"flip_dequantize throughput [{UNIT}], 8-bit codes, symmetric p", head, "-" * len(head)]
    for r in rows:
        ratio = f"{r['ratio']:8.1f}" if r["ratio"] is not None else f"{'':>8}"
        cw = f"{r['copy_weights_ratio']:9.2f}" if "copy_weights_ratio" in r else f"{'':>9}"
        cc = f"{r['copy_codes_ratio']:9.2f}" if "copy_codes_ratio" in r else f"{'':>9}"
        lines.append(f"{r['name']:<24} {r['implementation']:<13} {r.get('threads', ''):>3} {r.get('sampler', ''):<7} "
                     f"{r['median']:9.1f} {r['min']:9.1f} {r['max']:9.1f}  {ratio} {cw} {cc}")
    lines.append("x numpy: kernel throughput / NumPy throughput (same p).  copy-w/x, copy-c/x: how many times slower "
                 "than copying the n float32 weights / the n code bytes (1 = at the memory ceiling).")
    lines.append(f"numba {numba.__version__}, threading layer {_layer()}, NUMBA_NUM_THREADS="
                 f"{numba.config.NUMBA_NUM_THREADS}, numpy {np.__version__}")
    return "\n".join(lines)


def _layer() -> str:
    try:
        return numba.threading_layer()
    except ValueError:
        return "not initialised"


def main(quick: bool = False, json: bool = False) -> None:
    """Print the flip-and-dequantize table.

    Args:
        quick: 2^20 codes, 3 repeats.
        json: print the rows as one JSON object.
    """
    rows = run(quick=bool(quick))
    if json:
        print(_json.dumps({"rows": rows, "numba": numba.__version__, "threading_layer": _layer(),
                          "threads": numba.config.NUMBA_NUM_THREADS}))
    else:
        print(_table(rows))


if __name__ == "__main__":
    import fire

    fire.Fire(main)
