"""Command ``design``: oxide thickness and ECC from the physics to the cheapest protection that keeps the target."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from ..errors import InputError
from ._output import emit, flag_bool, flag_choice, flag_float, flag_int, flag_list, flag_out_file
from .evaluation import MAX_TRIALS

__all__ = ["DesignCommands"]


class DesignCommands:
    """Mixin of :class:`wkbnoise.cli.Cli`."""

    def design(self, model="lenet5", material="SiO2", years=10.0, cell="flash", target=0.95, codes=None,
               thickness_nm="3.5:6.0:0.1", trials=5, max_trials=15, images=200, seed=0, out=None, png=None, inputs=None,
               labels=None, json=False):
        """Which oxide, and how many check bits, keep MODEL at the target after YEARS? The design table.

        For each oxide thickness the WKB physics gives the cell's flip rates after the storage time
        (asymmetric, as the cell stores charge); for each code, the cheapest TAC plan (and uniform
        protection beside it) whose mean Monte Carlo metric keeps TARGET x the INT8 metric, with every
        stored bit of the codewords flipped and decoded. Prints per thickness and code: stored bits per
        weight (8 data bits + check bits of whole codewords), the measured metric with its 95 % interval,
        the measured and predicted output distortion; then the Pareto frontier (thickness vs stored bits per
        weight) and the thicknesses where no code reaches the target.

        Args:
            model: a zoo model name (lenet5, vgg, resnet20, mobilenetv2, vit) or any model file eval takes: a
                safetensors weight file, an .onnx, a Keras .h5/.hdf5 or a Hugging Face folder.
            material: oxide: SiO2, Si3N4 or HfO2.
            years: storage time without refresh [years], > 0.
            cell: memory cell preset, flash or dram.
            target: fraction of the clean INT8 metric to keep, in (0, 1] (default 0.95).
            codes: comma-separated codes: ideal, secded-72-64, secded-39-32, bch-64-t2, bch-64-t3 (default all).
            thickness_nm: oxide thicknesses START:STOP:STEP in nm, STOP included (default 3.5:6.0:0.1).
            trials: Monte Carlo trials of a first look at a point (>= 2; default 5).
            max_trials: most trials per point: one whose 95 % interval straddles the goal gets more, up to this.
            images: test images per point (default 200).
            seed: root seed of every fault draw.
            out: HDF5 run file; an interrupted run resumes from it, one of another configuration is refused.
            png: write the plot (stored bits per weight vs thickness, frontier) to this PNG file.
            inputs: safetensors file with an 'images' tensor (instead of the bundled MNIST test set).
            labels: safetensors file with a 'labels' tensor; without it the metric is agreement.
            json: print one JSON object instead of the tables.
        """
        from ..codes import REAL_CODES
        from ..evaluation.design import DEFAULT_CODES, DesignConfig, plot_design, run_design, thickness_grid
        from ..physics import memory_flip_rates

        as_json = flag_bool(json, "json")
        code_list = tuple(flag_list(codes, "codes")) if codes is not None else DEFAULT_CODES
        for c in code_list:
            flag_choice(c, "codes", ("ideal", *REAL_CODES))
        grid = thickness_grid(thickness_nm)
        target = flag_float(target, "target", low=0.0, high=1.0, low_open=True)
        years = flag_float(years, "years", low=0.0, low_open=True)
        cell = flag_choice(cell, "cell", ("flash", "dram"))
        material = flag_choice(material, "material", ("SiO2", "Si3N4", "HfO2"))
        model = _model_argument(model)
        for name, path in (("inputs", inputs), ("labels", labels)):
            if path is not None and not Path(str(path)).is_file():
                raise InputError(f"--{name}={path!r}: no such file. Give the path of a safetensors file.")
        memory_flip_rates(material, thickness_nm=grid[-1], years=years, cell=cell)    # checks the physics inputs
        cfg = DesignConfig(model=model, material=material, years=years, cell=cell, thickness_nm=grid,
                           codes=code_list, target=target, trials=flag_int(trials, "trials", low=2),
                           max_trials=flag_int(max_trials, "max-trials", low=2),
                           n_images=flag_int(images, "images", low=1, high=100_000), seed=flag_int(seed, "seed", low=0),
                           inputs=inputs, labels=labels)
        if cfg.trials > MAX_TRIALS:
            raise InputError(f"--trials={cfg.trials} is above the limit of {MAX_TRIALS:,} trials per point. Use "
                             f"--trials <= {MAX_TRIALS}.")
        if out is not None:
            flag_out_file(out, "out")
        if png is not None:
            flag_out_file(png, "png")
        tmpdir = None
        if out is None:
            tmpdir = tempfile.TemporaryDirectory(prefix="wkbnoise-design-")
            out = os.path.join(tmpdir.name, "design.h5")

        def say(msg):
            if not as_json:
                sys.stderr.write(msg + "\n")
                sys.stderr.flush()

        try:
            result = run_design(cfg, out, log=say)
        finally:
            if tmpdir is not None:
                tmpdir.cleanup()
        if png is not None:
            plot_design(result, str(png))
        result["run_file"] = None if tmpdir else str(out)
        result["png"] = None if png is None else str(png)
        emit(result, format_design(result), as_json)


def _model_argument(model) -> str:
    """MODEL as ``design`` stores it: a zoo name, or the path of any model file ``eval`` takes (checked here)."""
    from .. import zoo
    from .evaluation import IMPORTED_SUFFIXES, _models

    model = str(model)
    path = Path(model)
    if model in zoo.names() and not path.exists():
        return model
    if path.is_dir() or path.suffix.lower() in (".safetensors", *IMPORTED_SUFFIXES):
        if not path.exists():
            raise InputError(f"MODEL={model!r}: no such file or folder. Give a zoo name ({', '.join(zoo.names())}), a "
                             f"model file (.safetensors, .onnx, .h5, .hdf5, .keras) or a Hugging Face folder.")
        _models(model)  # reads the header: a damaged or foreign file is refused before any work
        return model
    raise InputError(f"MODEL={model!r} is neither a zoo model ({', '.join(zoo.names())}) nor a model file "
                     f"(.safetensors, .onnx, .h5, .hdf5, .keras) or a Hugging Face folder.")


def format_design(result: dict) -> str:
    """The design table, the frontier and the unreached thicknesses, as text."""
    cfg = result["config"]
    lines = [f"wkbnoise design {result['model']}: {cfg['material']} {cfg['cell']} cell, {cfg['years']:g} years; "
             f"keep {cfg['target']:g} x INT8 {result['metric']} {result['int8']:.4f} = {result['goal']:.4f} "
             f"(clean {result['clean']:.4f}); {cfg['trials']} to {cfg['max_trials']} trials x {cfg['n_images']} images per point",
             f"{result['monte_carlo_points']} Monte Carlo points run ({result['monte_carlo_trials']} trials), "
             f"{result['pruned']} plans decided by predicted distortion; "
             f"wall time {result['wall_s']:.0f} s" + (f"; run file {result['run_file']}" if result.get("run_file") else ""),
             "",
             f"{'t [nm]':>6} {'p(1->0)':>9} {'p(0->1)':>9} {'code':<13} {'method':<11} {'stored b/w':>10} "
             f"{'check b/w':>9} {'prot b/w':>8} {'metric [95 % CI]':>24} {'trials':>6} {'D meas':>9} {'D pred':>9}"]
    for r in result["rows"]:
        head = (f"{r['thickness_nm']:6.2f} {_g(r['p_down']):>9} {_g(r['p_up']):>9} {r['code']:<13} "
                f"{r['method']:<11}")
        if r["reached"]:
            lines.append(head + f" {r['stored_bits_per_weight']:10.4f} {r['check_bits_per_weight']:9.4f} "
                                f"{r['protected_bits_per_weight']:8.4f} {r['metric']:8.4f} [{r['lo']:.4f}, {r['hi']:.4f}] {r['trials']:6d} "
                                f"{r['distortion']:9.3g} {r['predicted_distortion']:9.3g}")
        else:
            lines.append(head + f" no plan reaches the target ({r['basis']})")
    lines += ["", "Pareto frontier (thinner oxide needs more stored bits per weight):"]
    for r in result["frontier"]:
        lines.append(f"  {r['thickness_nm']:.2f} nm  {r['code']:<13} {r['method']:<11} "
                     f"{r['stored_bits_per_weight']:.4f} stored bits/weight, metric {r['metric']:.4f}")
    if result["unreached"]:
        lines.append("no code reaches the target at " + ", ".join(f"{t:g}" for t in result["unreached"]) + " nm")
    if result.get("png"):
        lines.append(f"plot: {result['png']}")
    return "\n".join(lines)


def _g(x) -> str:
    return "-" if x is None else f"{x:.3g}"
