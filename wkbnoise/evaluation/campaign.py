"""Monte Carlo accuracy of a quantized model whose stored bits flip: the campaign engine.

A campaign is a set of independent *points* (model, method, budget, rates); each point runs ``trials``
trials, and trial ``t`` of a point draws its faults from ``derive_keys(seed, (*point, t), n_layers)``
only, so a result depends on neither the order of the points, nor the thread count, nor an interruption.

Speed (this is what ``bench/`` times against PyTorch, PyTorchFI and MRFI):

- every quantizable layer is quantized once per model (:class:`Evaluator`), its clean code histogram and
  per-plane bit balance computed once;
- the lookup table of each layer is built once per point, layers whose planes are all protected are
  dequantized once per point, and a point where nothing can flip is evaluated once;
- per trial, the fused kernel ``flip_dequantize`` writes straight into preallocated float32 weight
  buffers that the forward pass reads (memory stays flat across trials);
- the input-only work of the forward pass (the first layer's im2col) is prepared once per model;
- on a machine with more than one core, trials run in groups of one per core: either in turn, each forward
  pass in the setting of a :class:`~wkbnoise.parallel.BlasTuner`, or side by side, each trial on one thread
  with its own weight buffers and scratch arrays. Which is timed (:class:`~wkbnoise.parallel.Tuner`) and
  checked to give the same numbers bit for bit; side by side, no core waits for the last chunk of a pass.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass

import numba
import numpy as np

from ..allocation import LUT_OF_METHOD, METHODS, LayerStat, residual_variance
from ..errors import InputError, ModelFileError
from ..parallel import BlasTuner, Tuner
from ..rates import FlipRates
from ..runtime.base import PreparedInput
from ..sensitivity import model_outputs

__all__ = ["Evaluator", "TrialResult", "monte_carlo_accuracy", "METRICS", "score_outputs", "metric_reason",
           "COSINE_TARGET", "first_nonfinite", "nonfinite_parameter"]

METRICS = ("accuracy", "agreement", "cosine")
#: trials run side by side only while each extra thread's copy of the faulty weights stays under this [bytes]
SIDE_BY_SIDE_MAX_BYTES = 256 << 20
#: an encoder's target: mean cosine similarity to the clean INT-B embeddings of at least this (absolute)
COSINE_TARGET = 0.95


def metric_reason(metric: str, encoder: bool = False) -> str:
    """Which metric scores a model, and why, in one phrase."""
    if metric == "accuracy":
        return "labels given: top-1 accuracy against them"
    if metric == "agreement":
        return "no labels: top-1 agreement with the clean INT8 model's predictions"
    what = "mean-pooled embedding" if encoder else "outputs"
    why = "an encoder has no classes" if encoder else "asked for"
    return f"{why}: mean cosine similarity of the {what} to the clean INT8 model's"


@dataclass(frozen=True)
class TrialResult:
    """Per-trial results of one campaign point.

    Attributes
    ----------
    accuracy : ndarray of float64, shape (trials,)
        The metric per trial (accuracy, agreement or cosine similarity) [fraction, 0..1].
    distortion : ndarray of float64, shape (trials,)
        ``mean_x ||z(W~) - z(W_q)||^2`` per trial against the clean INT-B outputs, over the inputs whose
        outputs are finite [output^2] (NaN when none is).
    failed : ndarray of int64, shape (trials,)
        Failed inferences per trial: inputs whose outputs hold a NaN or an inf. They are scored wrong
        (accuracy, agreement) or 0 (cosine), never read through an ``argmax``.
    """

    accuracy: np.ndarray
    distortion: np.ndarray
    failed: np.ndarray | None = None


def _finite_rows(z: np.ndarray) -> np.ndarray:
    return np.isfinite(z.reshape(len(z), -1)).all(axis=1)


def score_outputs(z: np.ndarray, metric: str, labels=None, ref_pred=None, ref_out=None) -> float:
    """The metric of one trial's outputs ``z`` [n, ...]; an input whose outputs are not all finite scores 0."""
    ok = _finite_rows(z)
    if metric in ("accuracy", "agreement"):
        want = labels if metric == "accuracy" else ref_pred
        pred = np.argmax(np.where(ok[:, None], z.reshape(len(z), -1), 0.0), axis=1)
        return float(np.mean(ok & (pred == want)))
    a = np.where(ok[:, None], z.reshape(len(z), -1).astype(np.float64), 0.0)
    b = ref_out.reshape(len(ref_out), -1)
    den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return float(np.mean(np.sum(a * b, axis=1) / np.where(den > 0, den, 1.0)))


def nonfinite_parameter(model, weights=None) -> str | None:
    """The first parameter of ``model`` holding a NaN or inf (quantizable layers in forward order, then the
    rest, ``weights`` replacing layer weights), described in words, or None."""
    weights = dict(weights or {})
    tensors = {ly.name: weights.get(ly.name, ly.weight) for ly in model.layers}
    others = [(n, t) for n, t in getattr(model, "params", {}).items() if n not in tensors]
    for name, t in (*tensors.items(), *others):
        if not np.isfinite(np.asarray(t)).all():
            return f"parameter {name!r} (holds {int(np.size(t) - np.isfinite(t).sum())} non-finite values)"
    return None


def first_nonfinite(model, x, weights=None, batch_size: int = 256) -> str | None:
    """Where the first NaN or inf of a forward pass of ``model`` on ``x`` appears, or None if none does.

    Looks at the inputs, then every parameter (quantizable layers in forward order, then the rest), then
    re-runs the pass on the first failing input with the weights of the quantizable layers after layer
    ``k`` set to zero: the first ``k`` whose outputs are then not finite is the layer where a finite
    network first overflows (zero weights stop a finite value there but pass a NaN or inf on).
    """
    xin = getattr(x, "x", x)
    if isinstance(xin, np.ndarray) and not np.isfinite(xin).all():
        return "the input tensor (preprocessed images)"
    weights = dict(weights or {})
    names = [ly.name for ly in model.layers]
    tensors = {n: weights.get(n, ly.weight) for n, ly in zip(names, model.layers, strict=True)}
    bad = nonfinite_parameter(model, tensors)
    if bad is not None:
        return bad
    with np.errstate(over="ignore", invalid="ignore"):
        z = model_outputs(model, xin, weights, batch_size)
    bad = np.flatnonzero(~_finite_rows(z))
    if bad.size == 0:
        return None
    one = xin[int(bad[0]): int(bad[0]) + 1]  # slices of arrays and token batches alike
    for k, name in enumerate(names):
        w = {n: tensors[n].astype(np.float32) for n in names[: k + 1]}
        w.update({n: np.zeros_like(tensors[n], dtype=np.float32) for n in names[k + 1:]})
        with np.errstate(over="ignore", invalid="ignore"):
            z = model_outputs(model, one, w, batch_size)
        if not _finite_rows(z).all():
            return (f"the output of layer {name!r} (or the operations after it, before the next quantizable "
                    f"layer), first for input {int(bad[0])}")
    return "the operations after the last quantizable layer"


class Evaluator:
    """A model quantized once, its evaluation inputs prepared once: runs campaign points fast.

    Parameters
    ----------
    model : Model
        A loaded model: a classifier (``.layers``, ``forward(x, weights=...)``, optionally ``prepare``) or an
        encoder (``task == "encoder"``, ``encode(input_ids, attention_mask, token_type_ids, weights=...)``).
    images : ndarray, TokenBatch, mapping or None
        Classifier: uint8 images (preprocessed here) or float32 model inputs. Encoder: a
        :class:`~wkbnoise.text.TokenBatch`, a mapping with ``input_ids`` (and optionally ``attention_mask``,
        ``token_type_ids``), or ``None`` for the bundled English sentences through the model folder's own
        tokenizer (:func:`wkbnoise.text.sentence_inputs`).
    labels : ndarray of int, optional
        Class labels (classifiers); without them the metric is ``agreement``, top-1 agreement with the clean
        INT-B model's predictions (or ``cosine`` similarity of the outputs when ``metric="cosine"``). An
        encoder takes no labels: its metric is ``cosine``, the similarity of its mean-pooled embedding to the
        clean INT-B model's.
    bits : int
        Quantization bits B (per-tensor symmetric, two's complement).
    metric : {"accuracy", "agreement", "cosine"}, optional
        Defaults to ``accuracy`` with labels, ``agreement`` without, ``cosine`` for an encoder.
    batch_size : int, optional
        Images per forward chunk.
    """

    def __init__(self, model, images=None, labels=None, *, bits: int = 8, metric: str | None = None,
                 batch_size: int | None = None):
        from ..quant import code_histogram, quantize

        from .inputs import check_images, check_labels

        self.model = model
        self.bits = int(bits)
        self.encoder = getattr(model, "task", "classifier") == "encoder"
        self.tokens = self.encoder or bool(getattr(model, "tokens", False))  # reads token ids, not images
        if self.encoder:
            x = _encoder_inputs(model, images, labels, metric)
            metric = "cosine"
        elif self.tokens:  # a text classifier: token ids in, logits out, scored like an image classifier
            x = _token_inputs(model, images)
        else:
            if images is None:
                raise InputError("images is None: a classifier needs its test inputs (uint8 images or float32).")
            x = check_images(images)
            if x.dtype == np.uint8:
                x = model.preprocess(x)
        if metric is None:
            metric = "accuracy" if labels is not None else "agreement"
        if metric not in METRICS:
            raise InputError(f"metric={metric!r} must be one of {', '.join(METRICS)}.")
        if metric == "accuracy" and labels is None:
            raise InputError("metric='accuracy' needs labels; without labels use 'agreement' or 'cosine'.")
        self.metric = metric
        self.labels = None if labels is None or self.encoder else check_labels(labels, len(x))
        prepare = None if self.tokens else getattr(model, "prepare", None)
        self.x_raw = x
        self.x = prepare(x, batch_size) if prepare is not None else x
        self.batch_size = batch_size or (64 if self.tokens else 256)
        self.names = [ly.name for ly in model.layers]
        self.quantized = {ly.name: quantize(np.asarray(ly.weight), self.bits) for ly in model.layers}
        self.histogram = {n: code_histogram(q) for n, q in self.quantized.items()}
        self.p_one = {n: _plane_balance(q.codes, self.bits) for n, q in self.quantized.items()}
        self.int8_weights = {n: q.dequantize() for n, q in self.quantized.items()}
        self.buffers = {n: np.empty_like(w) for n, w in self.int8_weights.items()}
        self._blas = BlasTuner()  # the trials' forward passes: the fastest thread setting, same numbers
        # trials side by side on every core (each on one thread) or in turn (1): timed, the same numbers. Side
        # by side comes first and is timed again last: its first group allocates the extra threads' buffers
        cores = numba.get_num_threads()
        self._trial_modes = Tuner((cores, 1) if cores > 1 else (1,))
        self._slots: list[tuple[dict, object]] = [(self.buffers, None)]
        self._tables = {}  # sampler tables by rates: a crossing calls run() for a few trials at a time
        self.z_float = self._outputs(None)
        self._check_finite(self.z_float, None, "clean float")
        if self.labels is not None:
            check_labels(self.labels, len(x), self.z_float.shape[1])
        self.z_int8 = self._outputs(self.int8_weights)
        self._check_finite(self.z_int8, self.int8_weights, f"clean INT{self.bits}")
        self.ref_pred = np.argmax(self.z_int8, axis=1)  # agreement and cosine compare with the clean INT-B model
        self.clean_score = self._score(self.z_float)
        self.int8_score = self._score(self.z_int8)
        self.metric_reason = metric_reason(self.metric, self.encoder)

    # -- helpers --------------------------------------------------------------------------------------
    def _outputs(self, weights, threads: int | None = None, slot: int = 0) -> np.ndarray:
        """The outputs of a forward pass; ``slot`` > 0: on that trial thread's own copy of the input (its own
        scratch arrays, the input's caches shared)."""
        x = self.x if slot == 0 else self._slots[slot][1]
        with np.errstate(over="ignore", invalid="ignore"):  # non-finite outputs are counted, not warned about
            return model_outputs(self.model, x, weights, self.batch_size, threads=threads)

    def _slot_buffers(self, slot: int) -> dict:
        """Weight buffers of trial thread ``slot`` (made on first use, with a shallow copy of the input)."""
        while len(self._slots) <= slot:
            x = self.x
            if isinstance(x, PreparedInput):
                x = copy.copy(x)
                x.buffer_sets = []
            self._slots.append(({n: np.empty_like(w) for n, w in self.buffers.items()}, x))
        return self._slots[slot][0]

    def _check_finite(self, z, weights, what: str) -> None:
        if np.isfinite(z).all():
            return
        where = first_nonfinite(self.model, self.x_raw, weights, self.batch_size)
        n_bad = int((~_finite_rows(z)).sum())
        raise ModelFileError(f"the {what} forward pass gives NaN or inf outputs on {n_bad} of {len(z)} inputs; the "
                             f"first non-finite value appears in {where}. Fix the weights (or inputs); a "
                             "non-finite output is never read as a class.")

    def _score(self, z) -> float:
        return score_outputs(z, self.metric, self.labels, self.ref_pred, self.z_int8)

    def goal(self, target: float = 0.95) -> float:
        """The mean metric a protection plan must reach: ``target`` x the clean INT-B metric, except for
        ``cosine``, whose goal is ``target`` itself (a mean cosine similarity, absolute) [fraction]."""
        return float(target) if self.metric == "cosine" else float(target) * self.int8_score

    def scale(self, name: str) -> float:
        """Quantization step ``s_l`` of a layer [weight units]."""
        return float(self.quantized[name].scale)

    def layer_stats(self, rates, sensitivities: Mapping[str, float]) -> list[LayerStat]:
        """:class:`~wkbnoise.allocation.LayerStat` rows for allocation from ``G_l`` and the rates."""
        return [LayerStat(n, int(self.quantized[n].codes.size), self.scale(n), float(sensitivities[n]),
                          _rates_of(rates, n), self.p_one[n]) for n in self.names]

    def expected_weights(self, rates, plan: Mapping[str, int] | None = None) -> dict[str, np.ndarray]:
        """``E[w~]`` per layer without correction (T1 drift of the unprotected planes) [weight units]."""
        from ..theory import mean_drift

        plan = plan or {}
        out = {}
        for n in self.names:
            r = _rates_of(rates, n).protect_top(int(plan.get(n, 0)))
            table = (mean_drift(r) * self.scale(n)).astype(np.float32)
            out[n] = table[self.quantized[n].codes]
        return out

    def _sampler_tables(self, rates):
        """``sampler_tables(rates)``, built once per distinct rates (the alias tables cost ~0.3 ms each)."""
        from ..faults import sampler_tables

        key = (rates.p_down.tobytes(), rates.p_up.tobytes())
        if key not in self._tables:
            self._tables[key] = sampler_tables(rates)
        return self._tables[key]

    # -- one campaign point ------------------------------------------------------------------------------
    def run(self, rates, *, method: str = "none", plan: Mapping[str, int] | None = None, trials: int = 30,
            seed=0, point: tuple = (), progress: bool = False, code: str = "ideal",
            start: int = 0) -> TrialResult:
        """Run ``trials`` Monte Carlo trials of one point; see :func:`monte_carlo_accuracy`.

        With ``code`` other than ``"ideal"`` (one of :data:`wkbnoise.codes.REAL_CODES`), the protected planes
        of each layer are stored as codewords whose every bit flips, then decoded
        (:func:`wkbnoise.codes.read_stored`); the lookup table is built for the code's analytic residual
        rates (:func:`wkbnoise.ecc.protected_rates`).

        ``start`` is the index of the first trial: trials ``start .. start + trials - 1`` are run, so a
        point's trials can be split into blocks (on several workers), or extended with more trials, with the
        same numbers as one run.
        """
        from .._rng import derive_keys
        from ..correction import build_lut
        from ..faults import flip_dequantize
        from ..parallel import map_chunks, threads

        if method not in METHODS:
            raise InputError(f"method={method!r} is not known. Use one of {', '.join(METHODS)}.")
        if isinstance(trials, bool) or not isinstance(trials, int | np.integer) or trials < 1:
            raise InputError(f"trials={trials!r} must be an integer >= 1.")
        if isinstance(start, bool) or not isinstance(start, int | np.integer) or start < 0:
            raise InputError(f"start={start!r} must be an integer >= 0 (the index of the first trial).")
        plan = dict(plan or {})
        unknown = sorted(set(plan) - set(self.names))
        if unknown:
            raise InputError(f"plan names layers {unknown} that the model does not have; use names from model.layers.")
        lut_method = LUT_OF_METHOD[method]
        real = _real_code(code)
        live, fixed = [], {}
        gauss = {}
        coded = []
        for i, n in enumerate(self.names):
            r = _rates_of(rates, n)
            m = plan.get(n, 0)
            if isinstance(m, bool) or not isinstance(m, int | np.integer) or not 0 <= m <= self.bits:
                raise InputError(f"plan[{n!r}]={m!r} must be an integer in 0..{self.bits} (protected top planes).")
            qt = self.quantized[n]
            if real is not None and m > 0 and method != "gaussian" and (np.any(r.p_down[self.bits - m:])
                                                                         or np.any(r.p_up[self.bits - m:])):
                coded.append(_coded_layer(self, i, n, r, m, real, lut_method))
                continue
            r = r.protect_top(m) if real is None else _protected_rates(r, m, real.name)
            if method == "gaussian":
                var = residual_variance(r, 0, self.p_one[n]) * self.scale(n) ** 2
                if var > 0:
                    gauss[n] = (i, np.float32(np.sqrt(var)))
                else:
                    fixed[n] = self.int8_weights[n]
                continue
            if not np.any(r.p_down) and not np.any(r.p_up):
                fixed[n] = (build_lut(r, qt.scale, method="none")[qt.codes]).astype(np.float32)
                continue
            hist = self.histogram[n] if lut_method.startswith("bayes") else None
            lut = build_lut(r, qt.scale, method=lut_method, histogram=hist)
            live.append((i, n, qt.codes, r, lut, self._sampler_tables(r)))
        varying = [n for _, n, *_ in live] + list(gauss) + [n for _, n, _ in coded]
        acc = np.empty(trials)
        dist = np.empty(trials)
        failed = np.zeros(trials, dtype=np.int64)
        if not varying:  # nothing can flip: every trial is the same
            z = self._outputs(dict(fixed))
            acc[:] = self._score(z)
            dist[:] = _distortion(z, self.z_int8)
            failed[:] = int((~_finite_rows(z)).sum())
            return TrialResult(acc, dist, failed)
        n_layers = len(self.names)

        def faulty_weights(t: int, slot: int) -> dict:
            """The weights of trial ``t``, written into the buffers of ``slot``."""
            bufs = self._slot_buffers(slot)
            keys = derive_keys(seed, (*point, t), n_layers)
            # One thread for the flips: a layer takes well under a millisecond serially, and waking Numba's
            # pool right after the BLAS threads of the previous forward cost 2x on LeNet-5 (bench/
            # profile_campaign.py). The draws are bit-identical at any thread count.
            with threads(1):
                for i, n, codes, r, lut, tables in live:
                    flip_dequantize(codes, r, lut, keys[i], out=bufs[n], tables=tables)
                for i, n, read in coded:
                    read(keys[i], bufs[n])
            for n, (i, sd) in gauss.items():
                buf = bufs[n]
                np.random.default_rng(int(keys[i])).standard_normal(out=buf.reshape(-1), dtype=np.float32)
                buf *= sd
                buf += self.int8_weights[n]
            weights = dict(fixed)
            weights.update({n: bufs[n] for n in varying})
            return weights

        def one_by_one(ts) -> np.ndarray:
            """Trials in turn, each forward pass in the :class:`BlasTuner`'s setting."""
            zs = []
            for t in ts:
                weights = faulty_weights(t, 0)
                zs.append(self._blas.run(lambda n: self._outputs(weights, n)))
            return np.stack(zs)

        def side_by_side(ts) -> np.ndarray:
            """Trials on their own threads, each on one thread throughout (the same numbers)."""
            return np.stack(map_chunks(lambda k, slot: self._outputs(faulty_weights(ts[k], slot), 1, slot),
                                       len(ts), len(ts)))

        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=trials, desc=f"{method}", unit="trial", leave=False)
        # real codes decode through shared scratch arrays, and a copy of large weights costs memory: those
        # trials stay in turn
        big = sum(self.buffers[n].nbytes for n in varying) > SIDE_BY_SIDE_MAX_BYTES
        group = 1 if coded or big else max(self._trial_modes.candidates)
        t = int(start)
        while t < int(start) + trials:
            ts = list(range(t, min(t + group, int(start) + trials)))
            if len(ts) == group > 1:
                z_all = self._trial_modes.run(lambda mode: side_by_side(ts) if mode > 1 else one_by_one(ts))
            else:
                z_all = one_by_one(ts)
            for t_, z in zip(ts, z_all, strict=True):
                i = t_ - int(start)
                acc[i] = self._score(z)
                dist[i] = _distortion(z, self.z_int8)
                failed[i] = int((~_finite_rows(z)).sum())
            if bar is not None:
                bar.update(len(ts))
            t += len(ts)
        if bar is not None:
            bar.close()
        return TrialResult(acc, dist, failed)


def _real_code(code):
    """The real code of ``code``, or None for ``ideal``."""
    from ..codes import real_code
    from ..ecc import get_code

    return None if get_code(code).is_ideal else real_code(get_code(code).name)


def _protected_rates(r, m, code):
    from ..ecc import protected_rates

    return protected_rates(r, m, code)


def _coded_layer(ev, i, name, rates, m, code, lut_method):
    """(index, name, read) of a layer whose top ``m`` planes are codewords of ``code``: ``read(key, out)`` flips
    the stored bits, decodes, and writes the weights through the table of the code's residual rates."""
    from ..codes import read_stored
    from ..correction import build_lut

    qt = ev.quantized[name]
    hist = ev.histogram[name] if lut_method.startswith("bayes") else None
    lut = build_lut(_protected_rates(rates, m, code.name), qt.scale, method=lut_method, histogram=hist)
    lut2 = lut.reshape(-1, lut.shape[-1])
    read_codes = np.empty_like(qt.codes)
    rows = read_codes.reshape(lut2.shape[0], -1)

    def read(key, out):
        read_stored(qt.codes, rates, m, code, key, out=read_codes)
        if lut2.shape[0] == 1:
            np.take(lut2[0], read_codes, out=out)
        else:
            out.reshape(rows.shape)[...] = np.take_along_axis(lut2, rows.astype(np.intp), axis=1)

    return i, name, read


def _encoder_inputs(model, inputs, labels, metric):
    if labels is not None:
        raise InputError("labels score a classifier's predictions; this model is an encoder, scored by the cosine "
                         "similarity of its mean-pooled embedding to the clean INT8 model's: drop the labels.")
    if metric not in (None, "cosine"):
        raise InputError(f"metric={metric!r} needs a classifier's predictions; an encoder is scored by 'cosine'.")
    return _token_inputs(model, inputs)


def _token_inputs(model, inputs):
    from ..text import TokenBatch, sentence_inputs, token_batch

    if inputs is None:
        return sentence_inputs(model)
    if isinstance(inputs, TokenBatch):
        return inputs
    if isinstance(inputs, Mapping):
        return token_batch(inputs, model)
    return token_batch({"input_ids": inputs}, model)


def _distortion(z, ref) -> float:
    ok = _finite_rows(z)
    if not ok.any():
        return float("nan")
    return float(np.mean(np.sum((z[ok] - ref[ok]) ** 2, axis=1)))


def _plane_balance(codes: np.ndarray, bits: int) -> np.ndarray:
    """``P(b_k = 1)`` per plane over a layer's clean codes, float64[B]."""
    counts = np.bincount(codes.ravel(), minlength=2**bits).astype(np.float64)
    planes = (np.arange(2**bits)[:, None] >> np.arange(bits)[None, :]) & 1
    return counts @ planes / max(counts.sum(), 1.0)


def _rates_of(rates, name: str) -> FlipRates:
    if isinstance(rates, FlipRates):
        return rates
    if isinstance(rates, Mapping):
        if name not in rates:
            raise InputError(f"rates has no entry for layer {name!r}: give a FlipRates per layer, or one for all.")
        return rates[name]
    raise InputError(f"rates={rates!r} must be a FlipRates or a dict layer name -> FlipRates.")


def monte_carlo_accuracy(model, images, labels, rates, *, method: str = "none", plan=None, trials: int = 30,
                         seed=0, bits: int = 8, progress: bool = False, point: tuple = ()) -> np.ndarray:
    """Accuracy of ``model`` on ``images`` over ``trials`` independent fault draws.

    Quantizes every quantizable layer once (INT-``bits``, per tensor, two's complement); per trial flips
    every unprotected stored bit independently with ``rates``, dequantizes through the method's lookup
    table, and scores the forward pass.

    Parameters
    ----------
    model : Model
        From :func:`wkbnoise.runtime.load_model` or :func:`wkbnoise.zoo.load`.
    images : ndarray, TokenBatch, mapping or None
        uint8 images (N, C, H, W) or preprocessed float32 inputs; for an encoder token ids, or ``None`` for
        the bundled sentences (see :class:`Evaluator`).
    labels : ndarray of int or None
        Labels; ``None`` scores agreement with the clean INT-B model's predictions (an encoder: the cosine
        similarity of its mean-pooled embedding to the clean INT-B model's).
    rates : FlipRates or dict of str to FlipRates
        Raw per-plane flip rates, for every layer or per layer name [per bit].
    method : str
        One of :data:`wkbnoise.allocation.METHODS`; fixes the correction LUT (``gaussian`` replaces the bit
        flips by Gaussian noise of the corrected variance).
    plan : dict of str to int, optional
        Protected top planes per layer name (ideal ECC); missing layers are unprotected.
    trials : int
        Monte Carlo trials, >= 1.
    seed : int or numpy.random.SeedSequence
        Root seed; trial ``t`` uses ``derive_keys(seed, (*point, t), n_layers)``.
    bits : int
        Quantization bits B.
    progress : bool
        Show a tqdm bar on stderr.
    point : tuple of int
        The campaign point's indices, prepended to the trial index in the key (``()`` outside a campaign).

    Returns
    -------
    ndarray of float64, shape (trials,)
        Accuracy (or agreement, or mean cosine similarity) per trial [fraction, 0..1].
    """
    ev = Evaluator(model, images, labels, bits=bits)
    return ev.run(rates, method=method, plan=plan, trials=trials, seed=seed, point=point, progress=progress).accuracy
