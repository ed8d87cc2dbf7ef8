"""BlasTuner: the fastest thread setting for repeated forward passes, never a different result."""

from __future__ import annotations

import time

import numba
import numpy as np
import pytest
from threadpoolctl import ThreadpoolController, threadpool_limits

from wkbnoise import FlipRates, zoo
from wkbnoise.errors import InputError
from wkbnoise.evaluation.campaign import Evaluator
from wkbnoise.parallel import BlasTuner, threads

CTL = ThreadpoolController().select(user_api="blas")


def blas_threads() -> int:
    return max(int(i["num_threads"]) for i in CTL.info())


needs_two = pytest.mark.skipif(blas_threads() < 2 or numba.get_num_threads() < 2,
                               reason="one BLAS or Numba thread here: nothing to choose")


CORES = numba.get_num_threads()


def forward(slow=(), seconds: float = 0.02):
    """A stand-in forward pass: the same array in every setting, slow in the settings ``slow`` (pairs of
    chunk threads and BLAS threads as seen inside the call); it records the setting of every call."""
    seen = []

    def fn(threads):
        setting = (threads, blas_threads())
        seen.append(setting)
        if setting in slow:
            time.sleep(seconds)
        return np.arange(6, dtype=np.float32)

    return fn, seen


def observed(candidate):
    threads, blas = candidate
    return threads, blas_threads() if blas is None else blas


@needs_two
@pytest.mark.parametrize("fast", [0, 1, 2])
def test_picks_the_fastest_setting_and_follows_probes(fast):
    tuner = BlasTuner(reprobe=4)
    settings = [observed(c) for c in tuner.candidates]
    assert tuner.candidates == ((CORES, None), (1, blas_threads()), (1, 1))
    fn, seen = forward(slow=[s for k, s in enumerate(settings) if k != fast])
    for _ in range(40):
        assert np.array_equal(tuner.run(fn), np.arange(6, dtype=np.float32))
    assert tuner.choice == tuner.candidates[fast]
    assert seen[:4] == [*settings, settings[0]]  # the first call: warm-up, then each setting timed
    later = seen[4:]
    n_fast = later.count(settings[fast])
    assert n_fast >= 30 and 2 <= len(later) - n_fast <= 4  # probes, one setting each, ever rarer
    assert set(later) == set(settings)  # each other setting probed
    assert blas_threads() == settings[1][1]  # the library's count is restored


@needs_two
def test_results_that_depend_on_the_setting_stop_the_tuning():
    seen = []

    def fn(threads):
        seen.append((threads, blas_threads()))
        return np.array([10.0 * threads + blas_threads()])  # a different result in another setting

    tuner = BlasTuner()
    first = tuner.run(fn)
    assert first[0] == 10.0 * CORES + blas_threads() and not tuner.enabled
    for _ in range(20):
        assert tuner.run(fn)[0] == first[0]  # never another setting again
    assert set(seen[4:]) == {seen[0]}


def test_reprobe_is_checked():
    with pytest.raises(InputError, match="reprobe"):
        BlasTuner(reprobe=1)


@needs_two
def test_campaign_numbers_do_not_depend_on_the_chosen_count():
    """The same trials with the tuner held at one thread and at the library's count: identical accuracies."""
    images, labels = zoo.test_set()
    ev = Evaluator(zoo.load("lenet5"), images[::5], labels[::5])
    rates = FlipRates.symmetric(0.05, 8)
    ev._blas.enabled = False
    ref = ev.run(rates, trials=4, seed=3)
    with threadpool_limits(limits=1, user_api="blas"), threads(1):  # every BLAS library loaded by now
        ev._blas = BlasTuner()  # one BLAS and one Numba thread: nothing to choose, one thread throughout
        assert ev._blas.candidates == ((1, 1),)
        one = ev.run(rates, trials=4, seed=3)
    ev._blas = BlasTuner()
    tuned = ev.run(rates, trials=4, seed=3)
    assert np.array_equal(ref.accuracy, one.accuracy) and np.array_equal(ref.distortion, one.distortion)
    assert np.array_equal(ref.accuracy, tuned.accuracy) and np.array_equal(ref.distortion, tuned.distortion)
