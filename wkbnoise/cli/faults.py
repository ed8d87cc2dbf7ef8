"""Command ``validate``: the bit-plane theory beside Monte Carlo."""

from __future__ import annotations

import dataclasses

from ..errors import InputError
from ..rates import FlipRates
from ._output import emit, flag_bool, flag_choice, flag_float, flag_int

__all__ = ["FaultCommands"]

#: most stored codes per pooled Monte Carlo run: 2^30, about half an hour
MAX_SAMPLES = 1 << 30
#: wall time of `validate` at the default 2^24 samples, measured on a 2-core machine shared with other jobs [s]
_SECONDS_PER_2_24 = 28.0


class FaultCommands:
    """Mixin of :class:`wkbnoise.cli.Cli`."""

    def validate(self, bits=8, p_flip=None, p_down=None, p_up=None, protect=0, encoding="twos",
                 samples=1 << 24, seed=0, zoo=False, code=None, words=1 << 22, json=False):
        """Check the bit-plane theory (T1-T4, the exact law, every lookup table) against Monte Carlo.

        Prints one row per check: the closed-form value, the Monte Carlo estimate from the library's own
        flip kernels, the tolerance derived from the sample count (4.5 standard errors, or a chi-square
        critical value at alpha = 1e-4) and PASS/FAIL. Exits with status 1 when a row fails.

        Args:
            bits: bits per stored weight B, 2..16 (default 8).
            p_flip: symmetric flip probability per bit, in [0, 0.5) (default 0.1 when no rates are given).
            p_down: P(1 -> 0) per bit on every plane, in [0, 1); use with --p-up instead of --p-flip.
            p_up: P(0 -> 1) per bit on every plane, in [0, 1); p_down + p_up < 1.
            protect: number of top planes protected by an ideal ECC (their rates set to 0), 0..B-1.
            encoding: twos (two's complement) or signmag (sign-magnitude).
            samples: stored codes per pooled Monte Carlo run, 1024..2^30 (default 2^24 = 16777216, about half a
                minute on two cores).
            seed: root seed (integer >= 0).
            zoo: also the T5 rows: predicted vs measured output distortion of each bundled zoo model at
                p = 0.001, 0.01 and 0.1 (0.05 for the ViT), correct-only and the WKB greedy plan at 0.5 bits per
                weight (10 trials on 200 test images).
            code: instead of the bit-plane rows, check the analytic ECC model of this real code
                (secded-72-64, secded-39-32, bch-64-t2, bch-64-t3) against words stored, flipped and decoded
                at raw rates 1e-4, 1e-3 and 1e-2: word failure and residual data-bit error rate.
            words: words simulated per raw rate with --code (>= 1024; default 2^22).
            json: print one JSON object instead of the table.
        """
        from ..evaluation.validate import ValidationConfig, format_rows, run_validation

        bits = flag_int(bits, "bits", low=2, high=16)
        encoding = flag_choice(encoding, "encoding", ("twos", "signmag"))
        samples = flag_int(samples, "samples", low=1024)
        if samples > MAX_SAMPLES:
            days = samples / (1 << 24) * _SECONDS_PER_2_24 / 86400
            raise InputError(f"--samples={samples} is above the limit of {MAX_SAMPLES} (2^30): at about "
                             f"{_SECONDS_PER_2_24:g} s per 2^24 samples (measured on 2 cores) it would run about "
                             f"{days:.3g} days. Use --samples <= {MAX_SAMPLES}; the default 2^24 = 16777216 "
                             f"takes about half a minute.")
        seed = flag_int(seed, "seed", low=0)
        protect = flag_int(protect, "protect", low=0, high=bits - 1)
        as_json = flag_bool(json, "json")
        if p_flip is not None and (p_down is not None or p_up is not None):
            raise InputError("give either --p-flip (symmetric) or --p-down with --p-up, not both.")
        if p_down is not None or p_up is not None:
            pd = flag_float(0.0 if p_down is None else p_down, "p-down", low=0.0, high=1.0, high_open=True)
            pu = flag_float(0.0 if p_up is None else p_up, "p-up", low=0.0, high=1.0, high_open=True)
            if pd + pu >= 1.0:
                raise InputError(f"--p-down={pd:g} and --p-up={pu:g} give a = 1 - p_up - p_down <= 0: the stored bits "
                                 "carry no information. Use p_down + p_up < 1.")
            rates = FlipRates.uniform(pd, pu, bits)
        else:
            p = flag_float(0.1 if p_flip is None else p_flip, "p-flip", low=0.0, high=0.5, high_open=True)
            rates = FlipRates.symmetric(p, bits)
        rates = rates.protect_top(protect)
        config = ValidationConfig(rates, encoding=encoding, samples=samples, seed=seed)
        producers = None
        if code is not None:
            from ..codes import REAL_CODES
            from ..evaluation.validate_codes import code_producer

            code = flag_choice(code, "code", REAL_CODES)
            words = flag_int(words, "words", low=1024)
            producers = [code_producer(code, words=words, per_stratum=min(words, 1 << 14), seed=seed)]
        elif flag_bool(zoo, "zoo"):
            from ..evaluation.t5 import t5_producer
            from ..evaluation.validate import PRODUCERS

            producers = [*PRODUCERS, t5_producer(seed=seed)]
        rows = run_validation(config, progress=not as_json, producers=producers)
        payload = {"config": {"bits": bits, "encoding": encoding, "samples": samples, "seed": seed,
                              "zoo": producers is not None and code is None, "code": code,
                              "z": config.z, "alpha": config.alpha, "rates": rates.to_dict()},
                   "rows": [dataclasses.asdict(r) for r in rows],
                   "passed": all(r.passed for r in rows)}
        text = format_rows(rows, config)
        if code is not None:
            text = f"wkbnoise validate --code {code}: analytic ECC model vs decoded words (seed {seed})\n" + \
                text.split("\n", 1)[1]
        emit(payload, text, as_json)
        if not payload["passed"]:
            raise SystemExit(1)
