"""Commands ``eval`` (Monte Carlo accuracy under bit flips, TAC against the baselines) and ``reproduce``
(the paper's claims C1-C6 on the zoo, rendered to docs/results.md, or docs/results-quick.md with --quick)."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from ..errors import InputError
from ._output import emit, flag_bool, flag_choice, flag_float, flag_int, flag_list, flag_out_dir, flag_out_file

__all__ = ["EvaluationCommands"]


def _log(as_json: bool):
    def say(msg: str) -> None:
        if not as_json:
            sys.stderr.write(msg + "\n")
            sys.stderr.flush()

    return say


class EvaluationCommands:
    """Mixin of :class:`wkbnoise.cli.Cli`."""

    def eval(self, file=None, p_flip=None, material=None, thickness_nm=None, years=None, cell="flash",
             symmetric=False, methods=None, budgets=None, trials=None, images=None, inputs=None, labels=None,
             metric=None, seed=0, out=None, plan_json=None, code="ideal", workers=None, scheduler=None,
             json=False):
        """Monte Carlo accuracy of a quantized model whose stored weight bits flip, TAC against the baselines.

        With no FILE it evaluates the bundled zoo (lenet5, vgg, resnet20, mobilenetv2, vit) at the paper's
        defaults (INT8, symmetric p_flip = 0.10 for CNNs and 0.05 for the ViT) in a quick form that fits in
        minutes on two cores; it says which settings it used. Prints per model the clean and INT8 metric, per
        method and budget the mean over trials with its 95 % interval, then C_U and C_TAC (smallest budgets
        reaching 95 % of the INT8 metric), their ratio and the closed-form rho*, and the crossing C of every method on
        its nested budget path (trials added at a point until its 95 % interval clears the target), naming the best.

        Args:
            file: a safetensors weight file, or a Hugging Face model folder (config.json + model.safetensors, and for an encoder vocab.txt or tokenizer.json) (default: the bundled zoo).
            p_flip: symmetric flip probability per stored bit, in [0, 0.5) (default: 0.10 CNN, 0.05 ViT).
            material: oxide (SiO2, Si3N4, HfO2): take the rates from the WKB physics instead of --p-flip.
            thickness_nm: oxide thickness [nm] (with --material).
            years: storage time without refresh [years] (with --material).
            cell: memory cell preset, flash or dram (with --material).
            symmetric: with --material, use the symmetric average of the 1->0 and 0->1 rates (default asymmetric).
            methods: comma-separated methods: none, correct-only, uniform-msp, magnitude, random, tac, tac-bayes, tac-bayes-gain, gaussian.
            budgets: comma-separated budgets [protected data bits per weight], each in 0..8.
            trials: Monte Carlo trials per point (>= 1; the protocol uses 30); the crossing search adds up to 4x at a point.
            images: test inputs per point: a seeded random sample of the bundled test set or of --inputs, stratified by label where there are labels; an encoder samples its sequences the same way (default: the protocol's count, or all of them where there are fewer).
            inputs: safetensors file named after the model's inputs: 'images' (uint8 N,C,H,W or float32) for a classifier; 'input_ids' and optionally 'attention_mask', 'token_type_ids' (int64/int32 N,T) for an encoder (default for an encoder: the bundled English sentences through the folder's own tokenizer).
            labels: safetensors file with a 'labels' tensor; without it a classifier's metric is top-1 agreement with the clean INT8 model, an encoder's the mean cosine similarity of its pooled embedding to the clean INT8 model's (target >= 0.95).
            metric: accuracy, agreement or cosine (default: accuracy with labels, agreement without, cosine for an encoder).
            seed: root seed of every fault draw (integer >= 0).
            out: HDF5 run file; an interrupted run resumes from it, one of another configuration is refused.
            plan_json: write the TAC protection plan at the 95 % crossing of each model to this JSON file.
            code: ECC of the protected planes: ideal (they never err), or a real code whose codewords
                (data bits plus check bits) flip at the cell's rates and are decoded in every trial:
                secded-72-64, secded-39-32, bch-64-t2, bch-64-t3 (bch-K-tT: plan JSON check-bit count only).
            workers: run the trials on a local Dask cluster of N processes (needs wkbnoise[dask]); same numbers.
            scheduler: run the trials on the Dask cluster at tcp://HOST:PORT (wkbnoise[dask]); same numbers.
            json: print one JSON object instead of the tables.
        """
        from ..ecc import get_code
        from ..evaluation.executor import check_executor_args, open_executor
        from ..evaluation.protocol import FULL, QUICK_EVAL, describe, eval_config
        from ..evaluation.report import export_plans, json_report, text_report
        from ..evaluation.sweep import run_sweep

        as_json = flag_bool(json, "json")
        symmetric = flag_bool(symmetric, "symmetric")
        seed = flag_int(seed, "seed", low=0)
        code = get_code(code).name
        if code != "ideal":
            from ..codes import real_code

            real_code(code)
        workers, scheduler = check_executor_args(workers, scheduler)
        methods = flag_list(methods, "methods") or None
        if methods:
            for m in methods:
                flag_choice(m, "methods", ("none", "correct-only", "uniform-msp", "magnitude", "random", "tac",
                                           "tac-bayes", "tac-bayes-gain", "gaussian"))
        budgets = [flag_float(b, "budgets", low=0.0, high=8.0) for b in flag_list(budgets, "budgets")] or None
        trials = None if trials is None else _trials(trials)
        images = None if images is None else flag_int(images, "images", low=1, high=100_000)
        metric = None if metric is None else flag_choice(metric, "metric", ("accuracy", "agreement", "cosine"))
        for name, path in (("inputs", inputs), ("labels", labels), ("file", file)):
            if path is not None and not Path(str(path)).is_file() and not (name == "file" and Path(str(path)).is_dir()):
                raise InputError(f"--{name}={path!r}: no such file. Give the path of a safetensors file"
                                 + (" or of a Hugging Face model folder." if name == "file" else "."))
        if labels is not None and inputs is None:
            raise InputError("--labels needs --inputs (the images they label).")
        if out is not None:
            flag_out_file(out, "out")
        if plan_json is not None:
            flag_out_file(plan_json, "plan-json")
        rates = _rates(p_flip, material, thickness_nm, years, cell, symmetric)
        models = _models(file)
        quick = file is None and trials is None and images is None
        settings = QUICK_EVAL if quick else FULL
        if inputs is not None and images is None:  # all of the user's images, up to the protocol's count
            from ..evaluation.inputs import count_images

            n_user = count_images(inputs)
            images = None if n_user is None else max(1, min(settings["n_images"], n_user))
        config = eval_config(models, settings=settings, rates=rates, methods=methods, budgets=budgets, trials=trials,
                             n_images=images, seed=seed, metric=metric, inputs=inputs, labels=labels, code=code)
        config = _preflight(config, explicit_images=images is not None)
        say = _log(as_json)
        tmpdir = None
        if out is None:
            tmpdir = tempfile.TemporaryDirectory(prefix="wkbnoise-eval-")
            out = os.path.join(tmpdir.name, "run.h5")
        t0 = time.perf_counter()
        try:
            with open_executor(workers, scheduler) as executor:
                store = run_sweep(config, out, progress=not as_json, log=say, executor=executor)
            elapsed = time.perf_counter() - t0
            if plan_json is not None:
                export_plans(store, plan_json, code=code)
            header = describe(config, quick) + f"\nrun time {elapsed:.0f} s" + ("" if tmpdir else f"; run file {out}")
            payload = json_report(store)
            payload.update({"quick": quick, "run_time_s": elapsed, "run_file": None if tmpdir else str(out)})
            emit(payload, text_report(store, header=header), as_json)
        finally:
            if tmpdir is not None:
                tmpdir.cleanup()

    def reproduce(self, quick=False, out="runs", docs="docs", workers=None, scheduler=None, json=False):
        """Run the evaluation protocol (the paper's claims C1-C6) on the zoo and render the results page.

        Stores every number in OUT/reproduce.h5 (or reproduce-quick.h5; resumable: re-run the same command
        after an interruption), then writes DOCS/results.md (DOCS/results-quick.md with --quick) and its
        plots in DOCS/img/ from that file only.
        A claim that does not reproduce is reported with its measured figure.

        Args:
            quick: fewer trials and images (10 x 500 instead of 30 x 1000); the page says so.
            out: directory of the HDF5 run file.
            docs: directory that receives the page and img/.
            workers: run the campaign's trials on a local Dask cluster of N processes (wkbnoise[dask]).
            scheduler: run the campaign's trials on the Dask cluster at tcp://HOST:PORT (wkbnoise[dask]).
            json: print one JSON object (the summary) instead of the text summary.
        """
        from ..evaluation.executor import check_executor_args, open_executor
        from ..evaluation.reproduce import reproduce

        quick = flag_bool(quick, "quick")
        as_json = flag_bool(json, "json")
        workers, scheduler = check_executor_args(workers, scheduler)
        flag_out_dir(out, "out")
        flag_out_dir(docs, "docs")
        with open_executor(workers, scheduler) as executor:
            result = reproduce(quick=quick, out_dir=str(out), docs_dir=str(docs), progress=not as_json,
                               log=_log(as_json), executor=executor)
        emit(result["payload"], result["text"], as_json)


def _rates(p_flip, material, thickness_nm, years, cell, symmetric):
    from ..evaluation.config import RateSpec

    physics = [material, thickness_nm, years]
    if p_flip is not None and any(v is not None for v in physics):
        raise InputError("give either --p-flip or the physics (--material --thickness-nm --years), not both.")
    if p_flip is not None:
        p = flag_float(p_flip, "p-flip", low=0.0, high=0.5, high_open=True)
        return RateSpec.symmetric(p)
    if any(v is not None for v in physics):
        from ..physics import memory_flip_rates

        mat = "SiO2" if material is None else str(material)
        t = flag_float(4.5 if thickness_nm is None else thickness_nm, "thickness-nm", low=0.0, low_open=True)
        y = flag_float(10.0 if years is None else years, "years", low=0.0, low_open=True)
        cell = flag_choice(cell, "cell", ("flash", "dram"))
        r = memory_flip_rates(mat, thickness_nm=t, years=y, cell=cell, bits=8, symmetric=symmetric)
        kind = "symmetric" if symmetric else "asymmetric"
        return RateSpec.from_rates(f"{mat} {t:g} nm {y:g} y {cell} ({kind}: p10={r.p_down[0]:.3g}, p01={r.p_up[0]:.3g})", r)
    return None


#: model files that load_model translates with wkbnoise.importers (ONNX, Keras HDF5)
IMPORTED_SUFFIXES = (".onnx", ".h5", ".hdf5", ".keras")


def _models(file):
    import json

    from .. import zoo
    from ..evaluation.sources import weight_file
    from ..runtime.loader import read_header

    if file is None:
        return [(n, None, n) for n in zoo.names()]
    path = Path(str(file))
    if path.suffix.lower() in IMPORTED_SUFFIXES:  # no safetensors header: load_model reads it with its importer
        return [(path.stem, str(path), path.suffix[1:].lower())]
    weights = weight_file(path)
    arch = read_header(str(weights))[1].get("wkbnoise.arch", "")
    config = weights.with_name("config.json")
    if not arch and config.is_file():  # a Hugging Face folder: its model_type ("bert", "vit", ...)
        try:
            arch = str(json.loads(config.read_text(encoding="utf-8")).get("model_type", ""))
        except (UnicodeDecodeError, json.JSONDecodeError, AttributeError):
            arch = ""
    return [(path.name if path.is_dir() else path.stem, str(path), arch)]


#: most Monte Carlo trials per point: the per-trial results of every point are kept in memory and in the run
#: file, and 1e5 trials already pin a mean accuracy to about +-0.003 (95 %)
MAX_TRIALS = 100_000


def _trials(value) -> int:
    n = flag_int(value, "trials", low=1)
    if n > MAX_TRIALS:
        raise InputError(f"--trials={n} is above the limit of {MAX_TRIALS:,} trials per point: it would keep "
                         f"{16 * n / 2**30:.3g} GiB of per-trial results for every point and run {n / 30:.3g} times "
                         f"as long as the protocol's 30 trials. Use --trials <= {MAX_TRIALS} (30 is the protocol).")
    return n


def _preflight(config, *, explicit_images: bool = True):
    """Everything a run needs, checked before any work: models load, inputs fit them, labels are classes.

    Returns the configuration to run: for an encoder without ``--images``, the protocol's count of sequences
    or every sequence there is, whichever is fewer (an explicit ``--images`` beyond them is refused).
    """
    import dataclasses

    import numpy as np

    from .. import zoo
    from ..evaluation.inputs import check_labels, read_inputs, read_labels
    from ..evaluation.sweep import _load_model, encoder_sequences

    models = [(spec, _load_model(spec)) for spec in config.models]
    token_models = [m for _, m in models if getattr(m, "task", "classifier") == "encoder" or getattr(m, "tokens", False)]
    if token_models:  # token inputs: every check of the sweep's reader, here, before any forward pass
        seqs = [encoder_sequences(config, m) for m in token_models]
        n_avail = min(len(b) for b in seqs)
        classifiers = [(m, b) for m, b in zip(token_models, seqs, strict=True) if getattr(m, "task", "") != "encoder"]
        if config.metric == "accuracy" and config.labels is None and classifiers:
            raise InputError("--metric accuracy needs --labels; without labels use --metric agreement.")
        for m, b in classifiers:
            y = None if config.labels is None else read_labels(config.labels, len(b))
            if y is not None:
                z = m.forward({k: v[:1] for k, v in (("input_ids", b.input_ids), ("attention_mask", b.attention_mask),
                               ("token_type_ids", b.token_type_ids)) if k in m.input_names})
                check_labels(y, len(b), int(np.shape(z)[1]), where=f"--labels={config.labels!r}")
        if config.n_images > n_avail:
            where = "the bundled English sentences" if config.inputs is None else f"--inputs={config.inputs!r}"
            if explicit_images:
                raise InputError(f"--images={config.n_images} but {where} hold {n_avail} sequences; use --images "
                                 f"<= {n_avail}" + (", or give your own with --inputs." if config.inputs is None
                                                    else "."))
            config = dataclasses.replace(config, n_images=n_avail)
        if config.calibration > n_avail:  # the sequences themselves calibrate: never report more than there are
            config = dataclasses.replace(config, calibration=n_avail)
        return config
    if config.inputs is None:
        x, y = zoo.test_set()
        where = "the bundled test set"
    else:
        x = read_inputs(config.inputs)
        y = None if config.labels is None else read_labels(config.labels, len(x))
        where = f"--inputs={config.inputs!r}"
    if config.n_images > len(x):
        raise InputError(f"--images={config.n_images} but {where} holds {len(x)} inputs; use --images <= {len(x)}"
                         + ("." if config.inputs is not None else ", or give your own with --inputs."))
    if config.metric == "accuracy" and y is None:
        raise InputError("--metric accuracy needs --labels; without labels use --metric agreement or cosine.")
    for spec, model in models:
        one = x[:1]
        try:
            z = model.forward(model.preprocess(one) if one.dtype == np.uint8 else one.astype(np.float32))
        except (ValueError, IndexError, TypeError) as exc:
            raise InputError(f"{where} has inputs of shape {tuple(x.shape[1:])} and dtype {x.dtype}, which model "
                             f"{spec.name!r} cannot take ({' '.join(str(exc).split())}). Give inputs of the shape "
                             f"the model was trained on.") from None
        if y is not None and getattr(model, "task", "classifier") == "classifier":
            check_labels(y, len(x), int(np.shape(z)[1]), where=f"--labels={config.labels!r}")
    if config.inputs is not None and config.calibration > len(x):
        calib = zoo.calibration_images()[:1]
        for _, model in models:
            try:
                model.preprocess(calib)
            except Exception:  # noqa: BLE001 -- another input shape: the user's inputs calibrate, all of them at most
                return dataclasses.replace(config, calibration=len(x))
    return config
