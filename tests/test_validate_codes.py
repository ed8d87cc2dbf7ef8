"""validate --code: the analytic ECC model (binomial word failure, residual rate) against decoded words."""

from __future__ import annotations

import math

import pytest
from conftest import assert_one_line_error
from reference import syndrome_decoder_ref, word_outcomes_ref

from wkbnoise import FlipRates
from wkbnoise.codes import real_code
from wkbnoise.codes.storage import simulate_words
from wkbnoise.ecc import Code, get_code
from wkbnoise.evaluation.validate import ValidationConfig, run_validation
from wkbnoise.evaluation.validate_codes import code_producer, stratified_residual


@pytest.mark.parametrize("name", ["secded-39-32", "bch-64-t2"])
def test_simulate_words_equals_twin(name):
    c = real_code(name)
    got = simulate_words(c, 0.05, 0.01, 300, 99, block=64)
    ref = word_outcomes_ref(c.parity, syndrome_decoder_ref(c.parity, c.t), c.t, 0.05, 0.01, 300, 99)
    ref["n_words"] = 300
    assert got == ref
    assert got["words_wrong"] > 0 and got["detected"] > 0
    assert simulate_words(c, 0.05, 0.01, 300, 99, block=7) == got          # blocks do not change the tallies


@pytest.mark.statistical
@pytest.mark.parametrize("name", ["secded-72-64", "secded-39-32", "bch-64-t2", "bch-64-t3"])
def test_word_failure_is_the_binomial_tail(name):
    """Decoded words are wrong exactly when more than t stored bits err: P(Bin(n, p) > t)."""
    spec = get_code(name)
    p, w = 0.01, 1 << 18
    sim = simulate_words(name, p, p, w, 5)
    theory = float(spec.word_failure(p))
    se = math.sqrt(theory * (1 - theory) / w)
    assert abs(sim["words_wrong"] / w - theory) <= 4.5 * se
    assert sim["words_wrong"] == sim["words_over_t"]           # bounded distance: wrong <=> more than t errors
    wrong_t = Code(name, spec.n, spec.k, spec.t + 1).word_failure(p)    # a wrong theory is rejected
    assert abs(sim["words_wrong"] / w - wrong_t) > 4.5 * se


def test_stratified_residual_secded_matches_the_binomial_formula_at_small_rates():
    """SECDED: two errors are detected and leave 2 k / n wrong data bits per word on average; the
    analytic formula is then exact to leading order, and the stratified estimate agrees at p = 1e-4."""
    name = "secded-72-64"
    spec = get_code(name)
    rate, se, strata = stratified_residual(name, 1e-4, 1 << 13)
    mean2, se2 = strata[2]
    assert abs(mean2 - 2 * 64 / 72) <= 4.5 * se2
    assert abs(rate - float(spec.residual_bit_error(1e-4))) <= 4.5 * se + 1e-3 * rate
    # BCH: the analytic formula assumes every failed word miscorrects (i + t wrong bits); decoded, far fewer
    rate3, se3, strata3 = stratified_residual("bch-64-t3", 1e-3, 1 << 12)
    analytic = float(get_code("bch-64-t3").residual_bit_error(1e-3))
    assert 1.4 < analytic / rate3 < 2.0
    assert strata3[4][0] < 4 * 64 / 85 + 1.0


def test_code_rows_pass_and_fail_honestly():
    cfg = ValidationConfig(FlipRates.symmetric(0.1), samples=1 << 10)
    rows = run_validation(cfg, producers=[code_producer("secded-39-32", rates=(1e-3, 1e-2), words=1 << 16,
                                                       per_stratum=1 << 10)])
    assert len(rows) == 10
    wf = [r for r in rows if "word failure P" in r.quantity]
    assert [r.status for r in wf] == ["PASS", "PASS"]
    assert all(r.status in ("PASS", "INFO") for r in rows)


def test_validate_code_cli_bad_code(cli):
    assert_one_line_error(cli("validate", "--code", "hamming"), "--code", "secded-72-64")


@pytest.mark.slow
def test_validate_code_cli(cli):
    res = cli("validate", "--code", "secded-39-32", "--words", "4096", "--json")
    assert res.returncode == 0, res.stderr
    doc = res.json()
    assert doc["config"]["code"] == "secded-39-32" and doc["passed"]
    assert {r["check"] for r in doc["rows"]} == {f"secded-39-32 p={p:g}" for p in (1e-4, 1e-3, 1e-2)}
