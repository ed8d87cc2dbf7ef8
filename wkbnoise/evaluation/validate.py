"""The engine of ``python -m wkbnoise validate``: closed-form theory beside Monte Carlo, row by row.

Each row compares one theoretical number with its Monte Carlo estimate from the library's own flip
kernels and gives a tolerance derived from the sample count (``z`` standard errors, the standard error
taken from the *exact* law, :func:`wkbnoise.theory.conditional_moments`), or, for distributions, a
chi-square statistic against its critical value at ``alpha``. A row is ``PASS``, ``FAIL`` or ``INFO``
(shown for comparison, never failing: the Gaussian model).

Rows come from *row producers*: functions ``producer(ctx: Context) -> list[Row]`` listed in
:data:`PRODUCERS`. Another module adds rows (e.g. T5 on the zoo models) by passing its own producers to
:func:`run_validation`. The theory is read from ``ctx.theory`` (the :mod:`wkbnoise.theory` module by
default), so a test can hand in a deliberately wrong theory and watch a row fail.

Examples
--------
>>> from wkbnoise import FlipRates
>>> rows = run_validation(ValidationConfig(FlipRates.symmetric(0.1, bits=4), samples=1 << 14),
...                       producers=[t1_rows])
>>> sorted({r.status for r in rows})
['PASS']
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from types import ModuleType

import numpy as np
from scipy import stats

from .. import theory as _theory
from .._rng import derive_keys
from ..correction import METHODS as LUT_METHODS
from ..correction import build_lut
from ..errors import InputError
from ..faults import choose_method, flip_codes, flip_dequantize
from ..quant import code_dtype, values_to_codes
from ..rates import FlipRates

__all__ = ["ValidationConfig", "Row", "Context", "run_validation", "format_rows", "PRODUCERS", "rate_rows",
           "t1_rows", "t2_rows", "t3_rows", "t4_rows", "lut_rows", "gaussian_rows", "DEFAULT_SAMPLES"]

DEFAULT_SAMPLES = 1 << 24
CHUNK = 1 << 21


@dataclass(frozen=True)
class ValidationConfig:
    """What ``validate`` checks.

    Parameters
    ----------
    rates : FlipRates
        Per-plane flip rates (B = ``rates.bits``).
    encoding : {"twos", "signmag"}
    samples : int
        Stored codes per pooled Monte Carlo run (per-code rows use ``samples // 16`` each).
    seed : int
        Root seed; every run draws its keys from ``derive_keys(seed, (run, chunk))``.
    z : float
        Tolerance in standard errors for mean-type rows.
    alpha : float
        Significance level of chi-square rows (critical value ``chi2.isf(alpha, dof)``).
    """

    rates: FlipRates
    encoding: str = "twos"
    samples: int = DEFAULT_SAMPLES
    seed: int = 0
    z: float = 4.5
    alpha: float = 1e-4

    def __post_init__(self) -> None:
        if not isinstance(self.rates, FlipRates):
            raise InputError(f"rates must be a FlipRates, not {type(self.rates).__name__}.")
        _theory.check_encoding(self.encoding)
        if isinstance(self.samples, bool) or not isinstance(self.samples, int) or self.samples < 1 << 10:
            raise InputError(f"samples={self.samples!r} must be an integer >= 1024.")
        if not 0 < self.alpha < 0.5 or not self.z > 0:
            raise InputError(f"alpha={self.alpha!r} must be in (0, 0.5) and z={self.z!r} > 0.")


@dataclass(frozen=True)
class Row:
    """One line of the report: theory beside Monte Carlo."""

    check: str          # "T1", "T2", "T3", "T4", "rates", "LUT none", ...
    quantity: str
    theory: float
    measured: float
    tolerance: float
    status: str         # "PASS", "FAIL" or "INFO"
    note: str = ""

    @property
    def passed(self) -> bool:
        return self.status != "FAIL"


def mean_row(check: str, quantity: str, theory: float, measured: float, se: float, z: float, note: str = "") -> Row:
    """A row whose tolerance is ``z`` standard errors."""
    tol = z * se
    ok = abs(measured - theory) <= tol
    return Row(check, quantity, float(theory), float(measured), float(tol), "PASS" if ok else "FAIL", note)


def chi2_row(check: str, quantity: str, observed: np.ndarray, expected: np.ndarray, alpha: float,
             note: str = "") -> Row:
    """Chi-square goodness of fit; bins with expected count < 5 are pooled into one. Theory column = dof."""
    observed = np.asarray(observed, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    small = expected < 5.0
    if np.any(small):
        observed = np.append(observed[~small], observed[small].sum())
        expected = np.append(expected[~small], expected[small].sum())
        if expected[-1] == 0.0:
            observed, expected = observed[:-1], expected[:-1]
    # an observation in a bin of probability 0 is an outright failure
    if np.any((expected == 0) & (observed > 0)):
        return Row(check, quantity, float(len(expected) - 1), math.inf, 0.0, "FAIL", "count in an impossible bin")
    keep = expected > 0
    stat = float(np.sum((observed[keep] - expected[keep]) ** 2 / expected[keep]))
    dof = max(int(keep.sum()) - 1, 1)
    crit = float(stats.chi2.isf(alpha, dof))
    return Row(check, quantity, float(dof), stat, crit - dof, "PASS" if stat <= crit else "FAIL",
               note or f"chi2 <= {crit:.1f} (alpha={alpha:g})")


@dataclass
class Context:
    """What a row producer gets: the configuration, the theory module, and Monte Carlo helpers."""

    config: ValidationConfig
    theory: ModuleType = _theory
    _cache: dict = field(default_factory=dict)

    @property
    def rates(self) -> FlipRates:
        return self.config.rates

    @property
    def bits(self) -> int:
        return self.config.rates.bits

    @property
    def values(self) -> np.ndarray:
        """Signed value of each stored pattern (float64[2^B])."""
        return _theory.code_values(self.bits, self.config.encoding)

    def valid_codes(self) -> np.ndarray:
        """The patterns ``quantize`` can produce: q in -q_max..q_max (no negative zero)."""
        q_max = 2 ** (self.bits - 1) - 1
        return values_to_codes(np.arange(-q_max, q_max + 1), self.bits, self.config.encoding).astype(np.int64)

    def _chunks(self, run: int, total: int) -> Iterator[tuple[int, int]]:
        for c, start in enumerate(range(0, total, CHUNK)):
            yield c, min(CHUNK, total - start)

    def stored(self, pool: str, run: int, c: int, size: int) -> np.ndarray:
        """Deterministic stored codes of a pool chunk: ``uniform`` valid codes, ``weights`` (quantized
        Laplace weights, crowding near zero like real layers) or ``code:<pattern>``."""
        dt = code_dtype(self.bits)
        if pool.startswith("code:"):
            return np.full(size, int(pool[5:]), dtype=dt)
        rng = np.random.default_rng(derive_keys(self.config.seed, (1000 + run, c), 1)[0])
        if pool == "uniform":
            return self.valid_codes()[rng.integers(0, self.valid_codes().size, size)].astype(dt)
        q_max = 2 ** (self.bits - 1) - 1
        q = np.clip(np.rint(rng.laplace(0.0, q_max / 8.0, size)), -q_max, q_max).astype(np.int64)
        return values_to_codes(q, self.bits, self.config.encoding)

    def flips(self, pool: str, run: int, total: int, rates: FlipRates | None = None
              ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(stored, read) code chunks of ``total`` samples, flipped by :func:`flip_codes`."""
        rates = rates or self.rates
        for c, size in self._chunks(run, total):
            stored = self.stored(pool, run, c, size)
            key = derive_keys(self.config.seed, (run, c), 1)[0]
            yield stored, flip_codes(stored, rates, key)

    def pooled_histogram(self, pool: str, run: int, total: int) -> np.ndarray:
        """Histogram (counts) of the stored codes of a pool, float64[2^B]."""
        h = np.zeros(2**self.bits)
        for c, size in self._chunks(run, total):
            h += np.bincount(self.stored(pool, run, c, size), minlength=2**self.bits)
        return h


# -- row producers ---------------------------------------------------------------------------------------------
def rate_rows(ctx: Context) -> list[Row]:
    """Per-plane flip counts of the kernel against the rates (chi-square over planes, per direction)."""
    r, n = ctx.rates, ctx.config.samples
    ones = np.zeros(r.bits)
    n_ones = np.zeros(r.bits)
    downs = np.zeros(r.bits)
    ups = np.zeros(r.bits)
    for stored, read in ctx.flips("uniform", 1, n):
        s_bits = np.unpackbits(stored.view(np.uint8).reshape(stored.size, -1), axis=1, bitorder="little")[:, :r.bits]
        flip = np.unpackbits((stored ^ read).view(np.uint8).reshape(stored.size, -1), axis=1,
                             bitorder="little")[:, :r.bits]
        n_ones += s_bits.sum(axis=0)
        downs += (flip & s_bits).sum(axis=0)
        ups += (flip & (1 - s_bits)).sum(axis=0)
        ones += 0
    n_zeros = n - n_ones
    rows = []
    for label, count, trials, p in (("1->0", downs, n_ones, r.p_down), ("0->1", ups, n_zeros, r.p_up)):
        live = p > 0
        if np.any(live):
            stat = float(np.sum((count[live] - trials[live] * p[live]) ** 2 / (trials[live] * p[live] * (1 - p[live]))))
            dof = int(live.sum())
            crit = float(stats.chi2.isf(ctx.config.alpha, dof))
            rows.append(Row("rates", f"{label} flips per plane vs {label} rates (chi2, {dof} planes)", float(dof),
                            stat, crit - dof, "PASS" if stat <= crit else "FAIL",
                            f"rates measured {(count[live] / trials[live]).min():.4g}..{(count[live] / trials[live]).max():.4g}"))
        if np.any(~live):
            rows.append(Row("rates", f"{label} flips on protected planes", 0.0, float(count[~live].sum()), 0.0,
                            "PASS" if count[~live].sum() == 0 else "FAIL"))
    return rows


def _pooled_moments(ctx: Context, pool: str, run: int, total: int, rates: FlipRates | None = None):
    """Sums over a pool: count, sum(q), sum(q~ - q), sum((q~ - q) q), sum((q~ - mu(q))^2)."""
    rates = rates or ctx.rates
    q_of = ctx.values
    mu = ctx.theory.mean_drift(rates, ctx.config.encoding)
    acc = dict(n=0, q2=0.0, d=0.0, dq=0.0, c2=0.0, hist=np.zeros(2**ctx.bits))
    for stored, read in ctx.flips(pool, run, total, rates):
        q = q_of[stored]
        q_read = q_of[read]
        acc["n"] += stored.size
        acc["q2"] += float(q @ q)
        acc["d"] += float(np.sum(q_read - q))
        acc["dq"] += float((q_read - q) @ q)
        acc["c2"] += float(np.sum((q_read - mu[stored]) ** 2))
        acc["hist"] += np.bincount(stored, minlength=2**ctx.bits)
    return acc


def t1_rows(ctx: Context) -> list[Row]:
    """T1: pooled mean drift and gain over uniform codes, and the mean read value of single codes."""
    cfg, th = ctx.config, ctx.theory
    exact = _theory.conditional_moments(ctx.rates, cfg.encoding)      # tolerances from the exact law
    drift = th.mean_drift(ctx.rates, cfg.encoding)
    q = ctx.values
    acc = _pooled_moments(ctx, "uniform", 2, cfg.samples)
    pi = acc["hist"]
    n = acc["n"]
    rows = [mean_row("T1", "E[q~ - q], uniform stored codes", float(pi @ (drift - q)) / n, acc["d"] / n,
                     math.sqrt(float(pi @ exact["var"])) / n, cfg.z),
            mean_row("T1", "gain - 1 = E[(q~ - q) q] / E[q^2]", float(pi @ ((drift - q) * q)) / acc["q2"],
                     acc["dq"] / acc["q2"], math.sqrt(float(pi @ (exact["var"] * q**2))) / acc["q2"], cfg.z)]
    for code in _test_codes(ctx):
        m = cfg.samples // 16
        tot = 0.0
        for _, read in ctx.flips(f"code:{code}", 3 + code, m):
            tot += float(np.sum(q[read]))
        rows.append(mean_row("T1", f"E[q~ | q={q[code]:+.0f}]", drift[code], tot / m,
                             math.sqrt(exact["var"][code] / m), cfg.z))
    return rows


def _test_codes(ctx: Context) -> list[int]:
    q_max = 2 ** (ctx.bits - 1) - 1
    qs = sorted({-q_max, -1, 0, 1, q_max // 3, q_max})
    return [int(c) for c in values_to_codes(np.array(qs), ctx.bits, ctx.config.encoding)]


def t2_rows(ctx: Context) -> list[Row]:
    """T2: variance of single codes, pooled variance, and the top plane's share of it."""
    cfg, th, r = ctx.config, ctx.theory, ctx.rates
    q = ctx.values
    exact = _theory.conditional_moments(r, cfg.encoding)
    var = th.conditional_variance(r, cfg.encoding)
    rows = []
    for code in _test_codes(ctx):
        m = cfg.samples // 16
        s1 = s2 = 0.0
        for _, read in ctx.flips(f"code:{code}", 3 + code, m):
            x = q[read] - exact["mean"][code]
            s1 += float(x.sum())
            s2 += float(x @ x)
        sample_var = s2 / m - (s1 / m) ** 2
        rows.append(mean_row("T2", f"Var[q~ | q={q[code]:+.0f}]", var[code], sample_var,
                             math.sqrt(max(exact["mu4"][code] - exact["var"][code] ** 2, 0.0) / m), cfg.z))
    acc = _pooled_moments(ctx, "uniform", 2, cfg.samples)       # same draws as T1's pooled rows
    pi, n = acc["hist"], acc["n"]
    v_all = acc["c2"] / n
    se_all = math.sqrt(float(pi @ (exact["mu4"] - exact["var"] ** 2))) / n
    rows.append(mean_row("T2", "E[(q~ - E[q~|q])^2], uniform stored codes", float(pi @ var) / n, v_all, se_all, cfg.z))
    top = r.bits - 1
    if r.p_down[top] > 0 or r.p_up[top] > 0:
        only = FlipRates(np.where(np.arange(r.bits) == top, r.p_down, 0.0), np.where(np.arange(r.bits) == top, r.p_up, 0.0))
        acc_top = _pooled_moments(ctx, "uniform", 2, cfg.samples, only)      # same stored codes, MSB flips only
        ex_top = _theory.conditional_moments(only, cfg.encoding)
        v_top = acc_top["c2"] / n
        se_top = math.sqrt(float(pi @ (ex_top["mu4"] - ex_top["var"] ** 2))) / n
        share = v_top / v_all
        se = share * math.hypot(se_top / v_top, se_all / v_all)
        rows.append(mean_row("T2", "share of the variance carried by the top plane", th.variance_share(
            r, [top], cfg.encoding, pi), share, se, cfg.z))
    return rows


def t3_rows(ctx: Context) -> list[Row]:
    """T3: histogram of the read pattern of single codes against the exact law (chi-square)."""
    cfg, th = ctx.config, ctx.theory
    rows = []
    for code in _test_codes(ctx)[::2]:
        m = cfg.samples // 16
        h = np.zeros(2**ctx.bits)
        for _, read in ctx.flips(f"code:{code}", 3 + code, m):
            h += np.bincount(read, minlength=2**ctx.bits)
        rows.append(chi2_row("T3", f"law of q~ | q={ctx.values[code]:+.0f}", h,
                             m * th.transition_row(ctx.rates, code), cfg.alpha))
    if ctx.rates.is_symmetric and ctx.rates.is_uniform and ctx.rates.protected_planes() == 0:
        h = np.zeros(2**ctx.bits)
        for stored, read in ctx.flips("uniform", 2, cfg.samples):
            h += np.bincount(stored ^ read, minlength=2**ctx.bits)
        rows.append(chi2_row("T3", "law of the flip mask u XOR v, uniform codes", h,
                             cfg.samples * th.mask_probabilities(float(ctx.rates.p_down[0]), ctx.bits), cfg.alpha))
    return rows


def t4_rows(ctx: Context) -> list[Row]:
    """T4: the fused kernel in weight units: Var[w~] = s^2 Var[q~] for a layer with scale s."""
    cfg, r = ctx.config, ctx.rates
    scale = np.float32(0.0123)
    lut = build_lut(r, scale, encoding=cfg.encoding, method="none")
    exact = _theory.conditional_moments(r, cfg.encoding)
    mu_w = exact["mean"] * np.float64(scale)
    s2 = 0.0
    hist = np.zeros(2**ctx.bits)
    n = 0
    for c, size in ctx._chunks(4, cfg.samples):
        stored = ctx.stored("weights", 4, c, size)
        w = flip_dequantize(stored, r, lut, derive_keys(cfg.seed, (4, c), 1)[0])
        s2 += float(np.sum((w - mu_w[stored]) ** 2))
        hist += np.bincount(stored, minlength=2**ctx.bits)
        n += size
    v = ctx.theory.weight_variance(r, float(scale), cfg.encoding)
    se = float(scale) ** 2 * math.sqrt(float(hist @ (exact["mu4"] - exact["var"] ** 2))) / n
    return [mean_row("T4", f"E[(w~ - E[w~|q])^2] [weight^2], s = {float(scale):g}", float(hist @ v) / n, s2 / n,
                     se, cfg.z)]


def lut_rows(ctx: Context) -> list[Row]:
    """Each lookup table through the fused kernel: bias, gain - 1 and MSE [code units], Laplace-like weights."""
    cfg, th, r = ctx.config, ctx.theory, ctx.rates
    n = cfg.samples
    hist = ctx.pooled_histogram("weights", 5, n)
    q = ctx.values
    q2 = float(hist @ q**2)
    scale = np.float32(1.0)
    rows = []
    for method in LUT_METHODS:
        try:
            lut = build_lut(r, scale, encoding=cfg.encoding, method=method, histogram=hist)
        except InputError as exc:
            rows.append(Row(f"LUT {method}", "not applicable", math.nan, math.nan, 0.0, "INFO", str(exc).split(":")[0]))
            continue
        g = lut.astype(np.float64)                       # the float32 table actually applied
        mom = th.lut_error_moments(r, g, cfg.encoding)
        s1 = s2 = sq = 0.0
        for c, size in ctx._chunks(5, n):
            stored = ctx.stored("weights", 5, c, size)
            w = flip_dequantize(stored, r, lut, derive_keys(cfg.seed, (5, c), 1)[0]).astype(np.float64)
            e = w - q[stored]
            s1 += float(e.sum())
            sq += float(e @ q[stored])
            s2 += float(e @ e)
        var_e = np.maximum(mom["m2"] - mom["bias"] ** 2, 0.0)
        rows.append(mean_row(f"LUT {method}", "bias E[g(q~) - q]", float(hist @ mom["bias"]) / n, s1 / n,
                             math.sqrt(float(hist @ var_e)) / n, cfg.z))
        rows.append(mean_row(f"LUT {method}", "gain - 1 = E[(g - q) q] / E[q^2]", float(hist @ (mom["bias"] * q)) / q2,
                             sq / q2, math.sqrt(float(hist @ (var_e * q**2))) / q2, cfg.z))
        rows.append(mean_row(f"LUT {method}", "MSE E[(g(q~) - q)^2]", float(hist @ mom["m2"]) / n, s2 / n,
                             math.sqrt(float(hist @ np.maximum(mom["m4"] - mom["m2"] ** 2, 0.0))) / n, cfg.z))
        if method == "per-plane" and cfg.encoding == "twos":
            bits_one = (hist @ _theory.code_bits(r.bits)) / n
            rows.append(mean_row("V_l(0)", "per-plane MSE = residual_variance(rates, 0, p_one)",
                                 th.residual_variance(r, 0, bits_one), s2 / n,
                                 math.sqrt(float(hist @ np.maximum(mom["m4"] - mom["m2"] ** 2, 0.0))) / n, cfg.z))
    return rows


def gaussian_rows(ctx: Context) -> list[Row]:
    """The heavy tail: P(|q~ - q| >= 2^(B-1)) exact vs Monte Carlo, and what a Gaussian of T2's variance says."""
    cfg, r = ctx.config, ctx.rates
    q = ctx.values
    thresh = 2.0 ** (r.bits - 1)
    t = _theory.transition_matrix(r) if r.bits <= 10 else None
    hist = np.zeros(2**r.bits)
    big = 0
    n = 0
    for stored, read in ctx.flips("uniform", 2, cfg.samples):
        big += int(np.count_nonzero(np.abs(q[read] - q[stored]) >= thresh))
        hist += np.bincount(stored, minlength=2**r.bits)
        n += stored.size
    if t is None:
        return []
    tail_u = (np.abs(q[None, :] - q[:, None]) >= thresh).astype(np.float64)
    p_code = np.sum(t * tail_u, axis=1)
    p_exact = float(hist @ p_code) / n
    se = math.sqrt(float(hist @ (p_code * (1 - p_code)))) / n
    rows = [mean_row("T3 tail", f"P(|q~ - q| >= {thresh:g}), uniform codes", p_exact, big / n, se, cfg.z)]
    var = ctx.theory.gaussian_variance(r, cfg.encoding, hist)
    drift = ctx.theory.mean_drift(r, cfg.encoding) - q
    p_gauss = float(hist @ np.array([0.5 * math.erfc((thresh - d) / math.sqrt(2 * var)) +
                                     0.5 * math.erfc((thresh + d) / math.sqrt(2 * var)) for d in drift])) / n
    rows.append(Row("Gaussian", f"same P under N(drift, {var:.4g}) (model check, not a test)", p_gauss, big / n, 0.0,
                    "INFO", f"Gaussian/exact = {p_gauss / p_exact:.3g}" if p_exact > 0 else ""))
    return rows


PRODUCERS: list[Callable[[Context], list[Row]]] = [rate_rows, t1_rows, t2_rows, t3_rows, t4_rows, lut_rows,
                                                   gaussian_rows]


def run_validation(config: ValidationConfig, *, theory: ModuleType | None = None,
                   producers: Sequence[Callable[[Context], list[Row]]] | None = None,
                   progress: bool = False) -> list[Row]:
    """Run every row producer and return the rows (theory beside Monte Carlo).

    Parameters
    ----------
    config : ValidationConfig
    theory : module, optional
        The theory to check (default :mod:`wkbnoise.theory`); tests pass a wrong one to see rows fail.
        Tolerances always come from the exact law in :mod:`wkbnoise.theory`.
    producers : list of callables, optional
        ``producer(ctx) -> list[Row]``; default :data:`PRODUCERS`. Append your own to add rows.
    progress : bool
        A tqdm bar over the producers on stderr.
    """
    ctx = Context(config, theory or _theory)
    todo = list(PRODUCERS if producers is None else producers)
    if progress:
        from tqdm import tqdm

        todo = tqdm(todo, desc="validate", unit="check", leave=False)
    rows: list[Row] = []
    for producer in todo:
        rows.extend(producer(ctx))
    return rows


def format_rows(rows: Sequence[Row], config: ValidationConfig) -> str:
    """The report as a text table."""
    r = config.rates
    if r.is_symmetric and r.is_uniform and r.protected_planes() == 0:
        what = f"symmetric p = {float(r.p_down[0]):g}"
    else:
        what = f"p_down = {r.p_down.tolist()}, p_up = {r.p_up.tolist()}"
    lines = [f"wkbnoise validate: B = {r.bits}, {config.encoding}, {what}, sampler {choose_method(r)}, "
             f"{config.samples} samples, seed {config.seed}, tolerance {config.z:g} SE / chi2 alpha {config.alpha:g}"]
    head = f"{'check':<15} {'quantity':<58} {'theory':>12} {'monte carlo':>12} {'tolerance':>10} {'|diff|':>10}  status"
    lines += [head, "-" * len(head)]
    for row in rows:
        diff = abs(row.measured - row.theory)
        lines.append(f"{row.check:<15} {row.quantity[:58]:<58} {_fmt(row.theory)} {_fmt(row.measured)} "
                     f"{row.tolerance:10.3g} {diff:10.3g}  {row.status}" + (f"  ({row.note})" if row.note else ""))
    n_fail = sum(not row.passed for row in rows)
    n_test = sum(row.status != "INFO" for row in rows)
    lines.append(f"{n_test - n_fail}/{n_test} checks pass" + (f"; {n_fail} FAIL" if n_fail else ""))
    return "\n".join(lines)


def _fmt(x: float) -> str:
    if not math.isfinite(x):
        return f"{x!s:>12}"
    return f"{x:12.6g}"
