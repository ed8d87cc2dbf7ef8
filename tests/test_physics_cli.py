"""The physics and thickness-for commands (in-process through main(), plus one real subprocess)."""

from __future__ import annotations

import json

import pytest
from conftest import assert_one_line_error

from wkbnoise.__main__ import main
from wkbnoise.constants import SECONDS_PER_YEAR
from wkbnoise.physics import flip_probability, memory_cell, retention_time_s


def run(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_physics_json_matches_the_library(capsys):
    code, out, err = run(capsys, "physics", "--material", "SiO2", "--thickness-nm", "4.6", "--years", "10",
                         "--eta-up", "0.1", "--json")
    assert code == 0 and err == ""
    payload = json.loads(out)
    cell = memory_cell("SiO2", 4.6, "flash")
    p = float(flip_probability(10 * SECONDS_PER_YEAR, cell))
    assert payload["p_1to0"] == pytest.approx(p, rel=1e-12)
    assert payload["p_0to1"] == pytest.approx(0.1 * p, rel=1e-12)
    assert payload["p_symmetric"] == pytest.approx(0.55 * p, rel=1e-12)
    assert payload["retention_time_s"] == pytest.approx(float(retention_time_s(cell)), rel=1e-12)
    assert payload["retention_thickness_nm"] == pytest.approx(4.43, abs=0.01)
    assert payload["thickness_for_1e-6_nm"] == pytest.approx(5.16, abs=0.01)
    assert payload["informative"] is True and payload["barrier_eV"] == 3.1


def test_physics_table_says_when_bits_carry_no_information(capsys):
    code, out, _ = run(capsys, "physics", "--thickness-nm", "4")
    assert code == 0
    assert "p_1to0" in out and "retention time" in out and "A/cm^2" in out
    assert "essentially no information" in out and "5.16 nm" in out
    code, out, _ = run(capsys, "physics", "--thickness-nm", "3.5", "--json")
    payload = json.loads(out)
    assert code == 0 and payload["p_1to0"] == 1.0 and payload["informative"] is False
    assert "carry no information" in payload["verdict"]


def test_physics_dram_cell(capsys):
    code, out, _ = run(capsys, "physics", "--cell", "dram", "--thickness-nm", "5", "--json")
    payload = json.loads(out)
    assert code == 0 and payload["cell"] == "dram" and payload["v_stored_V"] == pytest.approx(0.55)


def test_thickness_for_command(capsys):
    code, out, _ = run(capsys, "thickness-for", "--p", "1e-6", "--years", "10", "--sigma-rel", "0.05", "--json")
    assert code == 0
    assert json.loads(out)["thickness_nm"] == pytest.approx(5.81, abs=0.05)
    code, out, _ = run(capsys, "thickness-for")
    assert code == 0 and "5.163 nm" in out and "SILC" in out


@pytest.mark.parametrize("args, fragments", [
    (("physics", "--material", "Unobtainium"), ("--material",)),
    (("physics", "--thickness-nm", "-1"), ("--thickness-nm",)),
    (("physics", "--cell", "sram"), ("--cell",)),
    (("thickness-for", "--p", "2"), ("--p",)),
    (("thickness-for", "--p", "1e-6", "--years", "1e40"), ("unreachable",)),
    (("thickness-for", "--p", "1e-6", "--sigma-rel", "0.3"), ("sigma",)),
])
def test_user_mistakes_are_one_line_errors(capsys, args, fragments):
    code, out, err = run(capsys, *args)
    assert code == 2 and out == ""
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in err
    for f in fragments:
        assert f in lines[0]


@pytest.mark.slow
def test_real_entry_point(cli):
    ok = cli("physics", "--json")
    assert ok.returncode == 0 and ok.json()["thickness_nm"] == 4.5
    assert_one_line_error(cli("thickness-for", "--p", "0"), "--p")
