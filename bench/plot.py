"""Plot the campaign rows of a ``bench/run.py`` results file: ``docs/img/performance_<mode>.png``.

Usage: ``python bench/plot.py [bench/results/quick.json] [--out docs/img/performance_quick.png]``.
Left: trials per second of each campaign implementation per model and p (log scale, bars = median,
whiskers = min..max over the timed calls). Right: the same campaign at 1 thread and at all threads.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
COLORS = {"wkbnoise": "#1b6ca8", "torch-hand": "#e07b39", "pytorchfi": "#7a7a7a", "mrfi": "#5aa469"}


def _bars(ax, groups, series, rows_of):
    width = 0.8 / max(len(series), 1)
    for k, impl in enumerate(series):
        xs, med, lo, hi = [], [], [], []
        for g_i, g in enumerate(groups):
            r = rows_of.get((g, impl))
            if r is None or not r.get("median"):
                continue
            xs.append(g_i + (k - (len(series) - 1) / 2) * width)
            med.append(r["median"])
            lo.append(r["median"] - r["min"])
            hi.append(r["max"] - r["median"])
        if xs:
            color = COLORS.get(impl.split(" ")[0], None)
            alpha = 0.55 if impl.endswith("1 thread") else 1.0
            ax.bar(xs, med, width, yerr=[lo, hi], label=impl, color=color, alpha=alpha, capsize=2)
    ax.set_xticks(range(len(groups)))
    ax.set_yscale("log")
    ax.grid(axis="y", which="both", alpha=0.3)


def plot(result: dict, out: Path) -> Path:
    rows = result["rows"]
    camp = [r for r in rows if r.get("part") == 3 and str(r.get("name", "")).startswith("campaign")]
    scal = [r for r in rows if r.get("part") == 4 and str(r.get("name", "")).startswith("scaling")]
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.6), gridspec_kw={"width_ratios": [2, 1]})
    groups = list(dict.fromkeys(r["name"] for r in camp))
    impls = list(dict.fromkeys(r["implementation"] for r in camp))
    _bars(axes[0], groups, impls, {(r["name"], r["implementation"]): r for r in camp})
    axes[0].set_xticklabels([g.replace("campaign ", "").replace(" p=", "\np=") for g in groups], fontsize=8)
    axes[0].set_ylabel("Monte Carlo trials per second (1,000 images)")
    axes[0].set_title("INT8 weight bit-flip campaign, same model/images/p/trials/threads")
    axes[0].legend(fontsize=8)
    sgroups = list(dict.fromkeys(r["model"] for r in scal))
    simpls = list(dict.fromkeys(r["implementation"] for r in scal))
    _bars(axes[1], sgroups, simpls, {(r["model"], r["implementation"]): r for r in scal})
    axes[1].set_xticklabels(sgroups, fontsize=8)
    axes[1].set_title("scaling, p = 0.01")
    axes[1].legend(fontsize=7)
    m = result["machine"]
    fig.suptitle(f"{m['cpu']}, {m['threads']} threads, load {m['load_average_start'][0]:.1f} at start; "
                 f"weights: {result['weights']} ({result['mode']} run, {m['date']})", fontsize=9)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def main(results: str = str(ROOT / "bench" / "results" / "quick.json"), out: str | None = None) -> None:
    """Plot a results file of bench/run.py (default: the quick one) into docs/img/performance_<mode>.png."""
    result = json.loads(Path(results).read_text())
    out = Path(out) if out else ROOT / "docs" / "img" / f"performance_{result['mode']}.png"
    print(plot(result, out))


if __name__ == "__main__":
    import fire

    fire.Fire(main)
