"""``reproduce``: a small protocol run on LeNet-5; the page shows exactly what the run file holds, resumes,
and the claim verdicts follow the numbers (a ratio outside the paper's range is reported as such)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from wkbnoise import zoo
from wkbnoise.evaluation import reproduce as rp
from wkbnoise.evaluation.report import point_rows, summary_rows
from wkbnoise.evaluation.store import RunStore

SETTINGS = {"trials": 3, "n_images": 200, "calibration": 64, "draws": 2, "budgets": (0.25, 1.0),
            "methods": ("none", "correct-only", "uniform-msp", "magnitude", "tac")}
THEORY = {"validate_samples": 1 << 16, "code_samples": 1 << 10, "hist_trials": 2, "t5_trials": 3, "t5_images": 100,
          "t5_p": (0.001, 0.01)}

pytestmark = pytest.mark.skipif(not zoo.path("lenet5").exists(), reason="lenet5 weights not trained")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    d = tmp_path_factory.mktemp("repro")
    out = rp.reproduce(quick=True, out_dir=str(d / "runs"), docs_dir=str(d / "docs"), progress=False,
                       models=["lenet5"], settings=SETTINGS, theory_settings=THEORY)
    return d, out


@pytest.mark.slow
def test_page_numbers_come_from_the_run_file(run):
    d, out = run
    page = (d / "docs" / "results-quick.md").read_text()  # the quick form's page, beside the full one
    store = RunStore.read(out["payload"]["run_file"])
    for r in point_rows(store, "lenet5", 0):
        assert f"| {r['method']} | " in page
        assert f"{r['mean']:.4f} | [{r['lo']:.4f}, {r['hi']:.4f}]" in page
    (s,) = summary_rows(store)
    assert s["best"] and f"| {s['best']} (best) |" in page  # C2 judged with tac and with the best method
    assert "20 per label" not in page and "per label 0: 20, 1: 20" in page  # 200 images, stratified
    assert not (d / "docs" / "results.md").exists()
    for name in ("lenet5", "t1_t2", "t3", "t5"):
        assert (d / "docs" / "img" / f"results-quick_{name}.png").stat().st_size > 10_000
    assert "Quick form" in page


@pytest.mark.slow
def test_claim_records_hold_theory_and_monte_carlo(run):
    _, out = run
    store = RunStore.read(out["payload"]["run_file"])
    attrs, t12 = store.get("claims/t12")
    # T1 per code: the Monte Carlo mean sits within 5 SE of the theory (SE from T2's variance, 1024 draws)
    se = np.sqrt(t12["var_theory"] / 1024)
    assert np.all(np.abs(t12["mean_mc"] - t12["mean_theory"]) < 5 * se)
    # T2 symmetric: p(1-p)(4^8-1)/3 for every code
    assert np.allclose(t12["var_theory"], 0.1 * 0.9 * (4**8 - 1) / 3)
    _, t3 = store.get("claims/t3")
    assert t3["counts"].sum() == 2 * 48000 and abs(t3["exact"].sum() - 1) < 1e-12
    rows = rp.validate_rows(store, "symmetric")
    assert rows and all(r["status"] in ("PASS", "INFO") for r in rows)


@pytest.mark.slow
def test_rerun_resumes_without_recomputing(run, monkeypatch):
    d, out = run
    calls = []
    monkeypatch.setattr(rp, "_t12_record", lambda *a: calls.append(a))
    again = rp.reproduce(quick=True, out_dir=str(d / "runs"), docs_dir=str(d / "docs"), progress=False,
                         models=["lenet5"], settings=SETTINGS, theory_settings=THEORY)
    assert calls == []
    assert again["payload"]["summary"][0]["c_u"] == out["payload"]["summary"][0]["c_u"]


@pytest.mark.slow
def test_verdicts_follow_the_measured_ratio(run, monkeypatch):
    _, out = run
    store = RunStore.read(out["payload"]["run_file"])
    rows = summary_rows(store)
    c2 = next(c for c in rp.claim_verdicts(store) if c["claim"] == "C2")
    ratio = rows[0]["ratio"]
    inside = rp.CLAIMED["ratio_lo"] <= ratio <= rp.CLAIMED["ratio_hi"]
    assert c2["verdict"].startswith(f"tac {int(inside)}/1")
    assert f"{ratio:.2f}x" in c2["measured"] and "best method" in c2["verdict"]
    # the same numbers with the ratio moved inside (or outside) the paper's range flip the verdict
    fake = [dict(rows[0], ratio=10.0 if not inside else 1.0)]
    monkeypatch.setattr(rp, "summary_rows", lambda s: fake)
    c2b = next(c for c in rp.claim_verdicts(store) if c["claim"] == "C2")
    assert c2b["verdict"].startswith(f"tac {int(not inside)}/1")


def test_bad_reproduce_flags_exit_2(cli):
    from conftest import assert_one_line_error

    assert_one_line_error(cli("reproduce", "--quick", "maybe"), "--quick")


def test_reproduce_config_names_its_theory_settings():
    c = rp.reproduce_config(True, ["lenet5"], SETTINGS, THEORY)
    assert c.extra["validate_samples"] == THEORY["validate_samples"] and c.extra["quick"] is True
    full = rp.reproduce_config(False)
    assert full.trials == 30 and full.n_images == 1000 and len(full.models) == len(zoo.names())
    assert re.fullmatch(r"\d+", str(full.extra["validate_samples"]))


@pytest.mark.slow
def test_point_predictions_go_through_the_measured_response(run):
    """Each point's predicted distortion is ``F(S)`` with the run's own response curve, not first-order ``S``;
    it is the number the allocation ranks by, and it tracks the measured one better than ``S`` does."""
    from wkbnoise.distortion import ResponseCurve

    _, out = run
    store = RunStore.read(out["payload"]["run_file"])
    curve = ResponseCurve.from_arrays(store.get("theory/lenet5/r0")[1])
    rows = [r for r in point_rows(store, "lenet5", 0) if np.isfinite(r["first_order_distortion"])]
    assert rows
    for r in rows:
        assert r["predicted_distortion"] == pytest.approx(curve(r["first_order_distortion"]), rel=1e-12)
    # at p = 0.1 the network's response is far from linear: F(S) differs from S on the unprotected plans
    worst = max(rows, key=lambda r: r["first_order_distortion"])
    assert worst["predicted_distortion"] > 1.5 * worst["first_order_distortion"]
    log_err = lambda key: np.mean([abs(np.log(r["distortion"] / r[key])) for r in rows if r["distortion"] > 0])  # noqa: E731
    assert log_err("predicted_distortion") < log_err("first_order_distortion")
