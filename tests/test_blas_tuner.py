"""BlasTuner: the faster BLAS thread count for repeated forward passes, never a different result."""

from __future__ import annotations

import time

import numpy as np
import pytest
from threadpoolctl import ThreadpoolController

from wkbnoise import FlipRates, zoo
from wkbnoise.errors import InputError
from wkbnoise.evaluation.campaign import Evaluator
from wkbnoise.parallel import BlasTuner

CTL = ThreadpoolController().select(user_api="blas")


def blas_threads() -> int:
    return max(int(i["num_threads"]) for i in CTL.info())


needs_two = pytest.mark.skipif(blas_threads() < 2, reason="BLAS runs one thread here: nothing to choose")


def forward(slow_at: int | None = None, seconds: float = 0.02):
    """A stand-in forward pass: the same array at any thread count, slow at ``slow_at`` threads; it records
    the thread count of every call."""
    seen = []

    def fn():
        n = blas_threads()
        seen.append(n)
        if n == slow_at:
            time.sleep(seconds)
        return np.arange(6, dtype=np.float32)

    return fn, seen


@needs_two
@pytest.mark.parametrize("slow", ["many", "one"])
def test_picks_the_faster_count_and_follows_probes(slow):
    default = blas_threads()
    fn, seen = forward(slow_at=default if slow == "many" else 1)
    tuner = BlasTuner(reprobe=4)
    for _ in range(40):
        assert np.array_equal(tuner.run(fn), np.arange(6, dtype=np.float32))
    fast = 1 if slow == "many" else default
    assert tuner.choice == fast
    assert seen[:3] == [default, 1, default]  # the first call: warm-up, then each count timed
    later = seen[3:]
    assert later.count(fast) >= 30 and 1 <= len(later) - later.count(fast) <= 4  # probes, ever rarer
    assert blas_threads() == default  # the library's count is restored


@needs_two
def test_results_that_depend_on_the_thread_count_stop_the_tuning():
    default = blas_threads()
    seen = []

    def fn():
        seen.append(blas_threads())
        return np.array([float(blas_threads())])  # a different result at another thread count

    tuner = BlasTuner()
    first = tuner.run(fn)
    assert first[0] == default and not tuner.enabled
    for _ in range(20):
        assert tuner.run(fn)[0] == default  # never the other count again
    assert set(seen[3:]) == {default}


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
    with CTL.limit(limits=1):
        ev._blas = BlasTuner()  # its default is now one thread: nothing to choose, one thread throughout
        one = ev.run(rates, trials=4, seed=3)
    ev._blas = BlasTuner()
    tuned = ev.run(rates, trials=4, seed=3)
    assert np.array_equal(ref.accuracy, one.accuracy) and np.array_equal(ref.distortion, one.distortion)
    assert np.array_equal(ref.accuracy, tuned.accuracy) and np.array_equal(ref.distortion, tuned.distortion)
