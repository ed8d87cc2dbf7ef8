"""design: physics -> rates per thickness -> cheapest protection per code that keeps the target; CLI errors."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_one_line_error
from standin_models import TwoLayer

from wkbnoise import InputError
from wkbnoise.evaluation.design import DesignConfig, pareto_front, plot_design, run_design, thickness_grid


def _standin():
    model = TwoLayer(d_in=12, d_hidden=48, d_out=6, relu=True, seed=4)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 12)).astype(np.float32)
    labels = np.argmax(model(x), axis=1)
    return model, x, labels


def test_thickness_grid():
    assert thickness_grid("3.5:3.8:0.1") == (3.5, 3.6, 3.7, 3.8)
    assert thickness_grid(4.5) == (4.5,)
    for bad, frag in (("5:4:0.1", "empty range"), ("4:5:0", "STEP > 0"), ("a:b", "START:STOP:STEP")):
        with pytest.raises(InputError, match=frag):
            thickness_grid(bad)


def test_design_config_refuses_bad_input():
    with pytest.raises(InputError, match="not a code design can decode"):
        DesignConfig(codes=("bch-64-t8",))
    for t in (0.0, 1.2):
        with pytest.raises(InputError, match=r"\(0, 1\]"):
            DesignConfig(target=t)


@pytest.mark.statistical
def test_design_on_a_standin_model(tmp_path):
    model, x, labels = _standin()
    cfg = DesignConfig(model="standin", thickness_nm=(4.6, 4.8, 5.2), codes=("ideal", "secded-72-64",
                       "bch-64-t3"), trials=3, n_images=200, calibration=64, draws=2)
    out = tmp_path / "design.h5"
    t0 = time.perf_counter()
    res = run_design(cfg, out, loader=lambda spec: model, inputs=lambda c, m: (x, labels, x[:64]))
    wall = time.perf_counter() - t0
    assert wall < 60
    rows = res["rows"]
    assert len(rows) == 3 * 3 * 2
    by = {(r["thickness_nm"], r["code"], r["method"]): r for r in rows}
    for r in rows:
        if r["reached"]:
            assert r["metric"] >= res["goal"]                        # every answer is measured and keeps the target
            assert r["lo"] <= r["metric"] <= r["hi"]
            n = sum(ly.n_weights for ly in model.layers)
            if r["code"] != "ideal":
                from wkbnoise.ecc import get_code

                c = get_code(r["code"])
                chk = sum(c.check_bits(ly.n_weights * r["plan"][ly.name]) for ly in model.layers)
                assert r["check_bits_per_weight"] == pytest.approx(chk / n)
                assert r["stored_bits_per_weight"] == pytest.approx(8 + chk / n)
    # thick oxide: nothing to protect; a thinner oxide never needs fewer stored bits (same code and method)
    assert by[(5.2, "secded-72-64", "tac")]["stored_bits_per_weight"] == 8.0
    for code in cfg.codes:
        costs = [by[(t, code, "tac")]["stored_bits_per_weight"] for t in cfg.thickness_nm
                 if by[(t, code, "tac")]["reached"]]
        assert costs == sorted(costs, reverse=True) or len(costs) <= 1
    front = res["frontier"]
    assert front == pareto_front(rows)
    for f in front:
        assert not any(r["reached"] and r["thickness_nm"] <= f["thickness_nm"]
                       and r["stored_bits_per_weight"] < f["stored_bits_per_weight"] for r in rows)
    # resume: the same numbers without a new Monte Carlo point
    again = run_design(cfg, out, loader=lambda spec: model, inputs=lambda c, m: (x, labels, x[:64]))
    assert again["monte_carlo_points"] == 0 and again["rows"] == rows
    plot_design(res, tmp_path / "d.png")
    assert (tmp_path / "d.png").stat().st_size > 1000
    json.dumps(res)


@pytest.mark.parametrize("args, frag", [
    (["--codes", "hamming"], "--codes"),
    (["--thickness-nm", "5.0:4.0:0.1"], "empty range"),
    (["--target", "1.5"], "--target"),
    (["--target", "0"], "--target"),
    (["nosuch"], "zoo model"),
    (["missing.onnx"], "no such file or folder"),
    (["missing.safetensors"], "no such file or folder"),
    (["README.md"], "nor a model file"),
])
def test_design_cli_bad_input_one_line(cli, args, frag):
    assert_one_line_error(cli("design", *args), frag)


@pytest.mark.slow
def test_design_cli_lenet(cli, tmp_path):
    res = cli("design", "lenet5", "--thickness-nm", "4.6:4.8:0.2", "--codes", "ideal,secded-72-64",
              "--trials", "2", "--images", "50", "--out", str(tmp_path / "d.h5"), "--png", str(tmp_path / "d.png"),
              "--json")
    assert res.returncode == 0, res.stderr
    doc = res.json()
    assert len(doc["rows"]) == 2 * 2 * 2 and (tmp_path / "d.png").exists()


@pytest.mark.slow
def test_design_cli_hugging_face_folder(cli, tmp_path):
    """``design`` takes what ``eval`` takes: a Hugging Face encoder folder, scored by cosine to the clean INT8."""
    folder = Path(__file__).resolve().parent / "data" / "minilm_tiny"
    res = cli("design", str(folder), "--thickness-nm", "4.7:4.8:0.1", "--codes", "ideal,secded-72-64",
              "--trials", "2", "--max-trials", "4", "--images", "20", "--json")
    assert res.returncode == 0, res.stderr
    doc = res.json()
    assert doc["model"] == "minilm_tiny" and doc["metric"] == "cosine" and doc["int8"] == pytest.approx(1.0, abs=1e-6)
    assert len(doc["rows"]) == 2 * 2 * 2 and doc["config"]["n_images"] == 20
    for r in doc["rows"]:
        if r["reached"]:  # judged above the goal: its interval's lower end clears 0.95 x 1.0
            assert r["lo"] >= doc["goal"] - 1e-12 and r["stored_bits_per_weight"] >= 8.0


def test_design_refuses_more_inputs_than_there_are(cli, tmp_path):
    """201 bundled sentences: ``--images 500`` is refused before any work, never run on 201 and reported as 500."""
    folder = Path(__file__).resolve().parent / "data" / "minilm_tiny"
    out = tmp_path / "d.h5"
    assert_one_line_error(cli("design", str(folder), "--images", "500", "--out", str(out)),
                          "--images=500", "holds 201", "--images <= 201")
    assert not out.exists()
