"""Benchmarks side by side: wkbnoise vs NumPy, PyTorch, PyTorchFI and MRFI, in one run, one table of ratios.

Usage::

    python bench/run.py [--quick] [--json] [--models lenet5,vgg] [--threads N] [--parts 1,2,3,4,5,6,7]

Parts (every timing of one part is taken in this one process, on the same CPU and thread count):

1. flip-and-dequantize kernel vs the obvious NumPy version vs a copy of the code bytes
   (``bench/flips.py``, ``run(quick) -> rows``);
2. forward pass of each zoo model, batch 1,000 and batch 1, vs PyTorch CPU (``bench/runtime.py``);
3. a Monte Carlo campaign: INT8 weights of every conv/linear layer, every bit flips independently
   with p = 0.01 and 0.1, accuracy on the 1,000 test images; trials per second of wkbnoise
   (``monte_carlo_accuracy``), a hand-written PyTorch campaign (``bench/campaign_torch.py``), and
   PyTorchFI / MRFI as their docs show (``bench/campaign_fi.py``); ratios to the PyTorch one;
4. the same campaign at 1 thread and at all threads (scaling), plus the memory of a wkbnoise
   campaign at T and 4T trials;
5. cold start: ``eval`` of LeNet-5 with one trial on 100 images in a fresh process (and the import);
6. parts 2 and 3 (wkbnoise and hand-written PyTorch) again with a CPU-bound process beside both sides,
   each ratio set against the idle one of this run;
7. time to an answer: the wall time to ``C_TAC`` of ``eval`` with its statistical crossing against a
   hand-written PyTorch sweep of the same plans with fixed trials (``bench/time_to_answer.py``).

``--quick`` runs LeNet-5 and VGG with few trials (under 5 minutes on 2 cores); the full run takes
all five zoo models. Results go to ``bench/results/{quick,full}.json`` with the machine, thread
count and versions; ``--json`` prints that object (one row per measurement) on stdout instead of
the table. Every row: ``part, name, implementation, unit, median, min, max, baseline, ratio``
(``ratio`` = speed relative to ``baseline``: > 1 means faster), plus notes.

Until the zoo is trained the models carry seeded random weights (``"weights": "random"`` in the
results); the timings do not depend on the weight values, the accuracies do.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import importlib.util
import json as _json
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
import tracemalloc
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
for _p in (str(ROOT), str(BENCH)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

import torch  # noqa: E402

from campaign_fi import CAMPAIGNS as FI_CAMPAIGNS  # noqa: E402
from campaign_fi import EXPRESSES, tool_versions  # noqa: E402
from campaign_torch import (  # noqa: E402
    TorchCampaign,
    build_torch_model,
    load_images,
    model_file,
    quant_modules,
    quantize_int8,
)

ALL_MODELS = ["lenet5", "vgg", "resnet20", "mobilenetv2", "vit"]
QUICK_MODELS = ["lenet5", "vgg"]
PS = [0.01, 0.1]
BASELINE = "torch-hand"
#: (trials per timed call, timed calls) per model: the same for every implementation
QUICK_TRIALS = {"lenet5": (4, 3), "vgg": (2, 2)}
FULL_TRIALS = {"lenet5": (10, 3), "vgg": (4, 3), "resnet20": (4, 3), "mobilenetv2": (4, 3), "vit": (6, 3)}
IMPLS = ["wkbnoise", "torch-hand", "pytorchfi", "mrfi"]
EXACT = {
    "wkbnoise": "exact per-bit flips (counter-based keys; same seed, same accuracies at any thread count)",
    "torch-hand": "exact per-bit flips (torch.rand < p per bit, XOR)",
    **EXPRESSES,
}


def log(msg: str, quiet: bool) -> None:
    if not quiet:
        print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------- machine
def machine_info(threads: int) -> dict:
    """Machine, thread count, load and versions, stored with the results."""
    import numba

    cpu = platform.processor()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    try:
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    try:
        import wkbnoise

        wkb_version = wkbnoise.__version__
    except Exception:  # noqa: BLE001 - report whatever is importable
        wkb_version = "unavailable"
    try:
        layer = numba.threading_layer()
    except ValueError:  # no parallel kernel has run yet
        layer = "not initialised"
    return {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "host": platform.node(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "threads": threads,
        "load_average_start": list(os.getloadavg()),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "numba_threading_layer": layer,
        "blas": _blas_info(),
        "torch": torch.__version__,
        "wkbnoise": wkb_version,
        "git_commit": commit,
        **tool_versions(),
    }


def _blas_info() -> str:
    try:
        import threadpoolctl

        info = [i for i in threadpoolctl.threadpool_info() if i.get("user_api") == "blas"]
        env = {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ}
        kernels = ", ".join(f"{i['internal_api']} {i.get('version')} kernel {i.get('architecture', '?')}"
                            for i in info) or "unknown"
        return kernels + (f" (environment: {env})" if env else " (OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE unset)")
    except ImportError:
        return "unknown (threadpoolctl missing: BLAS threads not limited)"


@contextlib.contextmanager
def n_threads(n: int):
    """The same thread count for PyTorch, Numba (``wkbnoise.threads``) and NumPy's BLAS.

    NumPy's OpenBLAS has a thread pool of its own that ``wkbnoise.threads`` does not touch; the
    runtime's GEMMs run there, so it is limited too (threadpoolctl), or "1 thread" would not be 1.
    """
    from wkbnoise import threads

    prev = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        with threads(n), _blas_limit(n):
            yield n
    finally:
        torch.set_num_threads(prev)


def _blas_limit(n: int):
    try:
        import threadpoolctl
    except ImportError:  # pragma: no cover - bench extra lists it
        return contextlib.nullcontext()
    return threadpoolctl.threadpool_limits(n, user_api="blas")


# --------------------------------------------------------------------------------------------- parts 1-2
def external_part(part: int, filename: str, quick: bool, quiet: bool) -> list[dict]:
    """Rows of ``bench/<filename>``'s ``run(quick)`` (written by the fault-model and runtime rooms)."""
    path = BENCH / filename
    if not path.exists():
        log(f"part {part}: {filename} is not there yet, skipped", quiet)
        return [_row(part, f"{filename} missing", "-", "-", None, note="not available in this checkout")]
    try:
        spec = importlib.util.spec_from_file_location(f"bench_{path.stem}", path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        rows = mod.run(quick)
    except Exception as exc:  # noqa: BLE001 - one part failing must not lose the others
        traceback.print_exc(file=sys.stderr)
        return [_row(part, f"{filename} failed", "-", "-", None, note=f"{type(exc).__name__}: {exc}")]
    out = []
    for r in rows:
        r = dict(r)
        r.setdefault("part", part)
        for k in ("name", "implementation", "unit", "median", "min", "max", "baseline", "ratio"):
            r.setdefault(k, None)
        out.append(r)
    return out


def _row(part, name, impl, unit, values, *, baseline=None, higher_is_better=True, **extra) -> dict:
    vals = np.asarray(values if values is not None else [], dtype=float)
    row = {
        "part": part,
        "name": name,
        "implementation": impl,
        "unit": unit,
        "median": float(np.median(vals)) if vals.size else None,
        "min": float(vals.min()) if vals.size else None,
        "max": float(vals.max()) if vals.size else None,
        "baseline": baseline,
        "ratio": None,
        "higher_is_better": higher_is_better,
    }
    row.update(extra)
    return row


def _set_ratios(rows: list[dict], group: str, baseline_impl: str) -> None:
    """ratio = speed of each row relative to the ``baseline_impl`` row of the same group."""
    base = next((r for r in rows if r.get("group") == group and r["implementation"] == baseline_impl), None)
    if base is None or not base["median"]:
        return
    for r in rows:
        if r.get("group") == group and r["median"]:
            r["baseline"] = baseline_impl
            r["ratio"] = (r["median"] / base["median"] if r["higher_is_better"]
                          else base["median"] / r["median"])


# --------------------------------------------------------------------------------------------- part 5
COLD_START_CMD = ["-m", "wkbnoise", "eval", "{lenet5}", "--trials", "1", "--images", "100", "--json"]


def part5(quiet: bool, runs: int = 3) -> list[dict]:
    """Cold start: ``eval`` of LeNet-5 with one trial on 100 images, each run a fresh process.

    The first run also fills Numba's on-disk cache where it is empty (a first use after installing); the
    rows report it apart from the later runs, which are what a user sees every time after that. The import
    of ``wkbnoise`` alone is timed the same way.
    """
    lenet5 = str(ROOT / "wkbnoise" / "zoo" / "lenet5.safetensors")
    cmd = [sys.executable] + [a.format(lenet5=lenet5) for a in COLD_START_CMD]
    env = dict(os.environ)
    times = []
    for i in range(runs):
        log(f"part 5: cold start, run {i + 1} of {runs}", quiet)
        t0 = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True, env=env)
        times.append(time.perf_counter() - t0)
        if done.returncode != 0:
            return [_row(5, "cold start eval lenet5", "wkbnoise", "s", None,
                         note=f"failed (exit {done.returncode}): {done.stderr.strip().splitlines()[-1:]}")]
    imports = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import wkbnoise"], check=True, env=env)
        imports.append(time.perf_counter() - t0)
    what = "eval lenet5, 1 trial, 100 images, fresh process"
    return [_row(5, f"cold start: first run ({what})", "wkbnoise", "s", times[:1], higher_is_better=False),
            _row(5, f"cold start: later runs ({what})", "wkbnoise", "s", times[1:], higher_is_better=False,
                 target_s=5.0, met=bool(np.median(times[1:]) < 5.0)),
            _row(5, "import wkbnoise, fresh process", "wkbnoise", "s", imports, higher_is_better=False)]


# --------------------------------------------------------------------------------------------- part 6
def part6(models, trials_of, threads: int, quiet: bool, scratch: str, idle_rows: list[dict],
          quick: bool) -> list[dict]:
    """The forward passes (part 2) and the campaigns against hand-written PyTorch (part 3) again, with a
    CPU-bound process started beside both sides; each ratio is set against the same ratio measured idle in
    this run (``busy/idle``; the aim: within 20 %)."""
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        log("part 6: busy machine (one CPU-bound process beside both sides)", quiet)
        with n_threads(threads):
            fwd = external_part(6, "runtime.py", quick, quiet)
        camp, _ = part3(models, trials_of, threads, quiet, scratch, ["wkbnoise", "torch-hand"])
    finally:
        spinner.kill()
        spinner.wait()
    idle = {(r.get("group"), r["implementation"]): r.get("ratio") for r in idle_rows}
    out = []
    for r in fwd + camp:
        r = dict(r, part=6, name=f"busy: {r['name']}")
        ref = idle.get((r.get("group"), r["implementation"]))
        if r.get("ratio") and ref:
            r["idle_ratio"] = ref
            r["busy_over_idle"] = r["ratio"] / ref
        out.append(r)
    return out


# --------------------------------------------------------------------------------------------- part 3
class WkbnoiseCampaign:
    """A wkbnoise campaign on a model file, symmetric per-bit p: one ``Evaluator`` per campaign.

    The constructor is the campaign's setup, as the torch-side campaigns build their module in theirs:
    quantize every layer once, prepare the fixed input, and score the clean float and INT8 models (two
    forward passes, once per campaign). ``run`` then times trials only; its accuracies are exactly those of
    ``monte_carlo_accuracy`` with the same seed (which is ``Evaluator(...).run(...)``).
    """

    def __init__(self, path: Path, images: np.ndarray, labels: np.ndarray, bits: int = 8):
        from wkbnoise.evaluation.campaign import Evaluator
        from wkbnoise.runtime import load_model

        self.model = load_model(path)
        self.bits = bits
        self.evaluator = Evaluator(self.model, images, labels, bits=bits)

    def run(self, p: float, trials: int, seed: int = 0) -> np.ndarray:
        from wkbnoise import FlipRates

        return self.evaluator.run(FlipRates.symmetric(p, self.bits), trials=trials, seed=seed).accuracy


def make_campaigns(path: Path, images, labels, quiet: bool, impls=IMPLS) -> dict:
    """Every implementation of the campaign on the same weight file and images."""
    tmodel = build_torch_model(path)
    camps = {"torch-hand": TorchCampaign(tmodel, images, labels)}
    try:
        camps["wkbnoise"] = WkbnoiseCampaign(path, images, labels)
    except Exception as exc:  # noqa: BLE001 - report it, measure the rest
        log(f"  wkbnoise campaign unavailable: {type(exc).__name__}: {exc}", quiet)
    versions = tool_versions()
    for tool, cls in FI_CAMPAIGNS.items():
        if versions[tool] != "absent":
            camps[tool] = cls(tmodel, images, labels)
    return {k: camps[k] for k in impls if k in camps}


def time_campaign(camp, p: float, trials: int, repeats: int) -> tuple[list[float], np.ndarray]:
    """Warm up once (JIT, caches), then ``repeats`` timed calls of ``trials`` trials (seeds 0..R-1).

    Returns trials/s of each call and all accuracies.
    """
    camp.run(p, 1, seed=10_000)
    speeds, accs = [], []
    for r in range(repeats):
        t0 = time.perf_counter()
        acc = camp.run(p, trials, seed=r)
        speeds.append(trials / (time.perf_counter() - t0))
        accs.append(acc)
    return speeds, np.concatenate(accs)


def code_agreement(path: Path, tmodel) -> dict:
    """Do the torch-side INT8 codes equal ``wkbnoise.quant.quantize`` of the runtime's folded weights?"""
    from wkbnoise.quant import quantize
    from wkbnoise.runtime import load_model

    model = load_model(path)
    wk = {layer.name: layer.weight for layer in model.layers}
    n = mismatch = 0
    missing = []
    for name, m in quant_modules(tmodel):
        w = wk.get(name + ".weight")
        if w is None:
            missing.append(name)
            continue
        tc, _ = quantize_int8(m.weight.data)
        wc = quantize(np.ascontiguousarray(w, dtype=np.float32), 8).codes.view(np.int8)
        a, b = tc.numpy().reshape(-1), wc.reshape(-1)
        if a.size != b.size:
            missing.append(name)
            continue
        if not np.array_equal(a, b):  # a layout of its own: compare as multisets
            a, b = np.sort(a), np.sort(b)
        n += a.size
        mismatch += int(np.count_nonzero(a != b))
    return {"codes": n, "mismatched": mismatch, "unmatched_layers": missing}


def part3(models, trials_of, threads: int, quiet: bool, scratch: str, impls=IMPLS) -> tuple[list[dict], dict]:
    rows, camps_of, checks = [], {}, {}
    images, labels, src = load_images()
    for name in models:
        path, origin = model_file(name, scratch)
        camps = make_campaigns(path, images, labels, quiet, impls)
        camps_of[name] = (path, camps)
        trials, repeats = trials_of[name]
        with contextlib.suppress(Exception):
            checks[f"{name} INT8 codes torch vs wkbnoise"] = code_agreement(path, build_torch_model(path))
        clean = {}
        with n_threads(threads):
            for impl, camp in camps.items():  # p = 0: every implementation sees the same clean INT8 model
                try:
                    clean[impl] = float(camp.run(0.0, 1, seed=0)[0])
                except Exception as exc:  # noqa: BLE001
                    clean[impl] = f"{type(exc).__name__}: {exc}"
            checks[f"{name} clean INT8 accuracy (p=0)"] = clean
            for p in PS:
                group = f"campaign {name} p={p}"
                for impl, camp in camps.items():
                    log(f"part 3: {group} {impl} ({repeats} x {trials} trials)", quiet)
                    try:
                        speeds, acc = time_campaign(camp, p, trials, repeats)
                    except Exception as exc:  # noqa: BLE001
                        traceback.print_exc(file=sys.stderr)
                        rows.append(_row(3, group, impl, "trials/s", None, group=group,
                                         note=f"failed: {type(exc).__name__}: {exc}"))
                        continue
                    rows.append(_row(3, group, impl, "trials/s", speeds, group=group, model=name, p=p,
                                     trials=trials, repeats=repeats, threads=threads, weights=origin,
                                     images=src, accuracy_mean=float(acc.mean()),
                                     accuracy_sd=float(acc.std(ddof=1)) if acc.size > 1 else 0.0,
                                     fault_model=EXACT[impl]))
                _set_ratios(rows, group, BASELINE)
    return rows, {"camps": camps_of, "checks": checks}


# --------------------------------------------------------------------------------------------- part 4
def part4(models, trials_of, threads: int, state: dict, rows3: list[dict], quiet: bool) -> list[dict]:
    """1 thread vs ``threads`` threads for wkbnoise and torch-hand at p = 0.01; memory vs trials."""
    rows = []
    p = PS[0]
    for name in models:
        _, camps = state["camps"][name]
        trials, repeats = trials_of[name]
        for impl in ("wkbnoise", "torch-hand"):
            if impl not in camps:
                continue
            group = f"scaling {name} p={p} {impl}"
            full = next((r for r in rows3 if r.get("group") == f"campaign {name} p={p}"
                         and r["implementation"] == impl and r["median"]), None)
            log(f"part 4: {group} at 1 thread", quiet)
            with n_threads(1):
                speeds, acc1 = time_campaign(camps[impl], p, trials, repeats)
            rows.append(_row(4, group, f"{impl} 1 thread", "trials/s", speeds, group=group, model=name,
                             p=p, threads=1, trials=trials, repeats=repeats))
            if full is not None:
                r = dict(full)
                r.update(part=4, name=group, implementation=f"{impl} {threads} threads", group=group,
                         ratio=None, baseline=None)
                if impl == "wkbnoise":  # same seeds -> same accuracies at any thread count
                    with n_threads(threads):
                        acc_n = camps[impl].run(p, trials, seed=0)
                    r["same_accuracies_as_1_thread"] = bool(np.array_equal(acc_n, acc1[:trials]))
                rows.append(r)
            _set_ratios(rows, group, f"{impl} 1 thread")
    # memory of a wkbnoise campaign must not grow with the number of trials
    name = models[0]
    _, camps = state["camps"][name]
    if "wkbnoise" in camps:
        t = trials_of[name][0]
        group = f"memory {name} p={p} wkbnoise"
        for n in (t, 4 * t):
            with n_threads(threads):
                tracemalloc.start()
                camps["wkbnoise"].run(p, n, seed=0)
                _, peak = tracemalloc.get_traced_memory()
                tracemalloc.stop()
            rows.append(_row(4, group, f"wkbnoise {n} trials", "MiB peak (tracemalloc)", [peak / 2**20],
                             group=group, higher_is_better=False, model=name, p=p, trials=n))
        _set_ratios(rows, group, f"wkbnoise {t} trials")
    return rows


# --------------------------------------------------------------------------------------------- targets & table
def targets(rows3: list[dict]) -> list[dict]:
    """The issue's targets, as ratios measured in this run."""
    out = []
    groups = sorted({r["group"] for r in rows3 if r.get("group")}, key=lambda g: [r["group"] for r in rows3].index(g))
    for g in groups:
        med = {r["implementation"]: r["median"] for r in rows3 if r.get("group") == g and r["median"]}
        w = med.get("wkbnoise")
        for other, need, label in (("torch-hand", 1.0, ">= 1x hand-written PyTorch"),
                                   ("pytorchfi", 10.0, ">= 10x PyTorchFI"),
                                   ("mrfi", 1.0, "> 1x MRFI")):
            if w and med.get(other):
                ratio = w / med[other]
                met = ratio > need if other == "mrfi" else ratio >= need
                out.append({"campaign": g, "target": label, "ratio": ratio, "met": bool(met)})
    return out


def _fmt(x, unit: str | None = None) -> str:
    if x is None:
        return "-"
    if isinstance(x, str):
        return x
    if abs(x) >= 1000 or (0 < abs(x) < 0.01):
        return f"{x:.3g}"
    return f"{x:.3f}" if abs(x) < 10 else f"{x:.1f}"


def table(result: dict) -> str:
    m = result["machine"]
    lines = [
        f"wkbnoise bench ({result['mode']}): {m['cpu']}, {m['cores']} cores, {m['threads']} threads; "
        f"numba {m['numba']} ({m['numba_threading_layer']}), numpy {m['numpy']}, torch {m['torch']}, "
        f"pytorchfi {m['pytorchfi']}, mrfi {m['mrfi']}; load average {m['load_average_start'][0]:.2f} at start, "
        f"{m['load_average_end'][0]:.2f} at end; weights: {result['weights']}; {result['elapsed_s']:.0f} s",
        "ratio = speed relative to the baseline of its group (> 1: faster); median / min / max over timed calls.",
    ]
    head = ("part", "measurement", "implementation", "unit", "median", "min", "max", "ratio", "vs", "acc")
    body = []
    for r in result["rows"]:
        body.append((str(r.get("part", "")), str(r.get("name", "")), str(r.get("implementation", "")),
                     str(r.get("unit", "")), _fmt(r.get("median")), _fmt(r.get("min")), _fmt(r.get("max")),
                     "-" if r.get("ratio") is None else f"{r['ratio']:.2f}x", str(r.get("baseline") or "-"),
                     "" if r.get("accuracy_mean") is None else f"{r['accuracy_mean']:.4f}"))
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(head)]
    fmt = "  ".join(f"{{:{'>' if i >= 4 else '<'}{w}}}" for i, w in enumerate(widths))
    lines += [fmt.format(*head), fmt.format(*("-" * w for w in widths))]
    last = None
    for r, b in zip(result["rows"], body):
        if last is not None and r.get("part") != last:
            lines.append("")
        last = r.get("part")
        lines.append(fmt.format(*b))
    notes = [r for r in result["rows"] if r.get("note")]
    if notes:
        lines += ["", "notes:"] + [f"  {r['name']} / {r['implementation']}: {r['note']}" for r in notes]
    if result["targets"]:
        lines += ["", "targets (wkbnoise trials/s over the other's, same run):"]
        for t in result["targets"]:
            lines.append(f"  {t['campaign']:<26} {t['target']:<28} {t['ratio']:8.2f}x  "
                         f"{'met' if t['met'] else 'MISSED'}")
    busy = [r for r in result["rows"] if r.get("busy_over_idle")]
    if busy:
        lines += ["", "busy machine (wkbnoise/PyTorch ratio with a CPU-bound process beside, over the idle "
                  "ratio; aim: within 20 %):"]
        lines += [f"  {r['name'][6:]:<40} idle {r['idle_ratio']:6.2f}x  busy {r['ratio']:6.2f}x  "
                  f"{r['busy_over_idle']:5.2f}  {'met' if abs(r['busy_over_idle'] - 1) <= 0.2 else 'MISSED'}"
                  for r in busy if r["implementation"] == "wkbnoise"]
    lines += ["", "what each campaign expresses:"] + [f"  {k}: {v}" for k, v in EXACT.items()]
    if result["checks"]:
        lines += ["", "checks:"] + [f"  {k}: {_json.dumps(v)}" for k, v in result["checks"].items()]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------- main
def main(quick: bool = False, json: bool = False, models=None, threads: int | None = None,
         parts="1,2,3,4,5,6,7", impls=",".join(IMPLS), out: str | None = None, no_save: bool = False) -> int:
    """Benchmarks side by side: wkbnoise vs NumPy, PyTorch, PyTorchFI and MRFI, one table of ratios.

    Args:
        quick: LeNet-5 and VGG, few trials (under 5 minutes on 2 cores).
        json: print one JSON object instead of the table.
        models: comma-separated zoo models (default: quick 2, full 5).
        threads: threads for torch and Numba (default: every CPU).
        parts: which parts to run, e.g. 3,4 (6 compares with 2 and 3 of the same run).
        impls: campaign implementations (parts 3-4).
        out: results file (default bench/results/{quick,full}.json).
        no_save: do not write the results file.
    """
    threads = os.cpu_count() if threads is None else int(threads)
    quiet = bool(json)
    parts = {int(x) for x in _csv(parts)}
    models = _csv(models) if models else (QUICK_MODELS if quick else ALL_MODELS)
    unknown = [m for m in models if m not in ALL_MODELS]
    if unknown:
        print(f"--models: {unknown} not in {ALL_MODELS}", file=sys.stderr)
        return 2
    trials_of = QUICK_TRIALS if quick else FULL_TRIALS
    trials_of = {m: trials_of.get(m, (4, 3)) for m in models}
    mode = "quick" if quick else "full"
    impls = _csv(impls)

    t_start = time.perf_counter()
    torch.set_num_threads(threads)
    machine = machine_info(threads)
    rows: list[dict] = []
    state = {"camps": {}, "checks": {}}
    with tempfile.TemporaryDirectory() as scratch:
        if 1 in parts:
            log("part 1: flip-and-dequantize kernel (bench/flips.py)", quiet)
            with n_threads(threads):
                rows += external_part(1, "flips.py", quick, quiet)
        if 2 in parts:
            log("part 2: forward passes vs PyTorch (bench/runtime.py)", quiet)
            with n_threads(threads):
                rows += external_part(2, "runtime.py", quick, quiet)
        rows3: list[dict] = []
        if 3 in parts or 4 in parts:
            rows3, state = part3(models, trials_of, threads, quiet, scratch, impls)
            if 3 in parts:
                rows += rows3
        if 4 in parts:
            rows += part4(models, trials_of, threads, state, rows3, quiet)
        if 5 in parts:
            rows += part5(quiet)
        if 6 in parts:
            rows += part6(models, trials_of, threads, quiet, scratch, rows, quick)
        if 7 in parts:
            log("part 7: time to an answer (bench/time_to_answer.py)", quiet)
            with n_threads(threads):
                rows += external_part(7, "time_to_answer.py", quick, quiet)
        weights = sorted({r.get("weights") for r in rows3 if r.get("weights")}) or ["-"]

    machine.update(machine_info(threads) | {"load_average_start": machine["load_average_start"]})
    machine["load_average_end"] = list(os.getloadavg())
    result = {
        "mode": mode,
        "models": models,
        "p": PS,
        "weights": ",".join(weights),
        "machine": machine,
        "elapsed_s": time.perf_counter() - t_start,
        "rows": rows,
        "targets": targets(rows3),
        "checks": state["checks"],
    }
    if not no_save:
        out = Path(out) if out else BENCH / "results" / f"{mode}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(_json.dumps(result, indent=1, default=str) + "\n")
        log(f"results written to {out}", quiet)
    print(_json.dumps(result, default=str) if json else table(result))
    return 0


def _csv(v) -> list[str]:
    """fire turns ``a,b`` into a tuple and ``3`` into an int: accept both and plain strings."""
    items = v if isinstance(v, list | tuple) else str(v).split(",")
    return [str(x).strip() for x in items if str(x).strip()]


if __name__ == "__main__":
    import fire

    import functools

    @functools.wraps(main)
    def _command(*args, **kwargs):  # fire prints a returned value; exit with it instead
        raise SystemExit(main(*args, **kwargs))

    fire.Fire(_command)
