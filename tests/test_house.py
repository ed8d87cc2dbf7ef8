"""The house: CLI error handling, FlipRates, thread control."""

from __future__ import annotations

import numba
import numpy as np
import pytest
from conftest import assert_one_line_error

from wkbnoise import FlipRates, InputError, PhysicsDomainError, threads
from wkbnoise.__main__ import main


def test_unknown_command_is_one_line_exit_2(cli):
    assert_one_line_error(cli("no-such-command"), "no-such-command", "--help")


def test_main_returns_2_on_library_error(capsys):
    # the parent --help prints help and exits 0
    assert main(["--help"]) == 0


def test_flip_rates_symmetric_and_protection():
    r = FlipRates.symmetric(0.1, bits=8)
    assert r.bits == 8 and r.is_symmetric and r.is_uniform
    np.testing.assert_array_equal(r.a, np.full(8, 0.8))
    p = r.protect_top(3)
    assert p.protected_planes() == 3
    np.testing.assert_array_equal(p.p_down, [0.1] * 5 + [0.0] * 3)
    assert p.is_uniform  # live planes share one pair
    assert r.protect_top(0) == r and r.protect_top(8).protected_planes() == 8


@pytest.mark.parametrize("p", [0.5, 0.7])
def test_flip_rates_refuse_no_information(p):
    with pytest.raises(PhysicsDomainError, match="p_flip < 0.5"):
        FlipRates.symmetric(p)


@pytest.mark.parametrize(
    "pd, pu",
    [([0.1, 1.0], [0.0, 0.0]), ([-0.1, 0.0], [0.0, 0.0]), ([0.1, 0.1], [0.1]), ([np.nan, 0.0], [0.0, 0.0]),
     ([0.1], [0.1])],
)
def test_flip_rates_refuse_bad_vectors(pd, pu):
    with pytest.raises(InputError):
        FlipRates(pd, pu)


def test_flip_rates_refuse_a_not_positive_asymmetric():
    with pytest.raises(PhysicsDomainError, match="plane 1"):
        FlipRates([0.1, 0.6], [0.1, 0.4])


def test_flip_rates_are_read_only():
    r = FlipRates.uniform(0.01, 0.0, bits=4)
    with pytest.raises(ValueError):
        r.p_down[0] = 0.5


def test_threads_restores_even_on_error():
    before = numba.get_num_threads()
    with pytest.raises(RuntimeError):
        with threads(1):
            assert numba.get_num_threads() == 1
            raise RuntimeError("boom")
    assert numba.get_num_threads() == before
    with pytest.raises(InputError):
        with threads(0):
            pass
