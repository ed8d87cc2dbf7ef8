"""The validate report: passes at its defaults, and rejects a deliberately wrong theory at the default sample count."""

from __future__ import annotations

import types

import numpy as np
import pytest
from conftest import assert_one_line_error

from wkbnoise import FlipRates
from wkbnoise import theory as th
from wkbnoise.__main__ import main
from wkbnoise.evaluation import validate as v


def _wrong_theory(**overrides):
    mod = types.SimpleNamespace(**{name: getattr(th, name) for name in dir(th) if not name.startswith("__")})
    for name, fn in overrides.items():
        setattr(mod, name, fn)
    return mod


def test_small_run_all_rows_pass_and_format():
    cfg = v.ValidationConfig(FlipRates.uniform(0.1, 0.03, 4).protect_top(1), samples=1 << 15, seed=3)
    rows = v.run_validation(cfg)
    assert rows and all(r.passed for r in rows), [r for r in rows if not r.passed]
    checks = {r.check for r in rows}
    assert {"rates", "T1", "T2", "T3", "T4", "LUT none", "LUT per-plane", "LUT bayes", "LUT bayes-gain"} <= checks
    text = v.format_rows(rows, cfg)
    assert "PASS" in text and "checks pass" in text


def test_extra_producers_add_rows():
    cfg = v.ValidationConfig(FlipRates.symmetric(0.05, 4), samples=1 << 12)
    def extra(ctx):
        return [v.mean_row("T5", "made-up", 1.0, 1.05, 0.01, ctx.config.z)]
    rows = v.run_validation(cfg, producers=[extra])
    assert [r.status for r in rows] == ["FAIL"]


@pytest.mark.statistical
def test_drift_without_its_minus_p_term_is_rejected_at_default_samples():
    cfg = v.ValidationConfig(FlipRates.symmetric(0.1, 8))
    assert cfg.samples == v.DEFAULT_SAMPLES
    right = v.run_validation(cfg, producers=[v.t1_rows])
    assert all(r.passed for r in right)
    wrong = _wrong_theory(mean_drift=lambda rates, encoding="twos": th.mean_drift(rates, encoding) + rates.p_up[0])
    rows = v.run_validation(cfg, theory=wrong, producers=[v.t1_rows])
    pooled = next(r for r in rows if r.quantity.startswith("E[q~ - q]"))
    assert pooled.status == "FAIL"


@pytest.mark.statistical
def test_twos_complement_msb_share_for_sign_magnitude_is_rejected():
    cfg = v.ValidationConfig(FlipRates.symmetric(0.1, 8), encoding="signmag", samples=v.DEFAULT_SAMPLES // 4)
    def share_right(ctx):
        return [r for r in v.t2_rows(ctx) if "top plane" in r.quantity]
    assert [r.status for r in v.run_validation(cfg, producers=[share_right])] == ["PASS"]
    wrong = _wrong_theory(variance_share=lambda rates, planes, encoding="twos", histogram=None:
                          th.top_plane_share(rates.bits, len(planes)))
    rows = v.run_validation(cfg, theory=wrong, producers=[share_right])
    assert [r.status for r in rows] == ["FAIL"]


@pytest.mark.statistical
def test_wrong_lut_mse_is_rejected():
    cfg = v.ValidationConfig(FlipRates.symmetric(0.1, 6), samples=1 << 18)
    def wrong_moments(rates, g, encoding="twos"):
        m = th.lut_error_moments(rates, g, encoding)
        return {**m, "m2": m["m2"] * 1.10}
    rows = v.run_validation(cfg, theory=_wrong_theory(lut_error_moments=wrong_moments), producers=[v.lut_rows])
    mse_rows = [r for r in rows if r.check.startswith("LUT") and "MSE" in r.quantity]
    assert len(mse_rows) == 5 and all(r.status == "FAIL" for r in mse_rows)


def test_cli_exit_1_when_a_row_fails(monkeypatch, capsys):
    def failing(ctx):
        return [v.Row("T0", "always wrong", 0.0, 1.0, 0.1, "FAIL")]
    monkeypatch.setattr(v, "PRODUCERS", [failing])
    assert main(["validate", "--samples", "2048"]) == 1
    assert "FAIL" in capsys.readouterr().out
    monkeypatch.setattr(v, "PRODUCERS", [v.t1_rows])
    assert main(["validate", "--samples", "4096", "--bits", "4", "--json"]) == 0
    import json
    payload = json.loads(capsys.readouterr().out)
    assert payload["passed"] and payload["rows"][0]["check"] == "T1"


def test_cli_refuses_bad_flag_in_one_line(cli):
    assert_one_line_error(cli("validate", "--p-flip", "0.5"), "--p-flip", "< 0.5")


@pytest.mark.parametrize("args, fragment", [
    (("--bits", "17"), "--bits"), (("--p-flip", "0.1", "--p-down", "0.1"), "either"),
    (("--p-down", "0.6", "--p-up", "0.5"), "p_down + p_up < 1"), (("--encoding", "ones"), "--encoding"),
    (("--samples", "10"), "--samples"), (("--protect", "8"), "--protect"),
])
def test_cli_refuses_bad_flags(capsys, args, fragment):
    assert main(["validate", *args]) == 2
    err = capsys.readouterr().err
    assert fragment in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
@pytest.mark.statistical
def test_validate_defaults_pass(cli):
    res = cli("validate", "--json")
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    payload = res.json()
    assert payload["passed"] and len(payload["rows"]) >= 35
    assert np.isclose(payload["config"]["rates"]["p_down"][0], 0.1)
