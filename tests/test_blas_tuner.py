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
from wkbnoise.parallel import BlasTuner, Tuner, threads

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


# ------------------------------------------------------------------------------ Tuner, and trials side by side
def test_tuner_without_warm_times_each_setting_once_then_keeps_the_fastest():
    seen = []

    def fn(setting):
        seen.append(setting)
        time.sleep(0.02 if setting != "b" else 0.0)
        return np.ones(3)

    tuner = Tuner(("a", "b", "c"), reprobe=50, warm=False)
    for _ in range(10):
        assert np.array_equal(tuner.run(fn), np.ones(3))
    assert seen[:3] == ["a", "b", "c"] and seen[3:] == ["b"] * 9 and tuner.choice == "b"
    with pytest.raises(InputError, match="empty"):
        Tuner(())


def _same(a, b):
    return (np.array_equal(a.accuracy, b.accuracy) and np.array_equal(a.distortion, b.distortion)
            and np.array_equal(a.failed, b.failed))


@pytest.mark.parametrize("method,plan", [("none", None), ("tac", {"conv1.weight": 3, "fc1.weight": 1}), ("gaussian", None)])
def test_trials_side_by_side_give_the_numbers_of_trials_in_turn(method, plan):
    """Trials on their own threads (forced), in turn (forced) and as timed: identical results, for an odd
    trial count and a start inside the point (the last trial runs alone), on a prepared input whose per-thread
    copies keep their own scratch arrays."""
    images, labels = zoo.test_set()
    model = zoo.load("lenet5")
    rates = FlipRates.symmetric(0.05, 8)
    results = []
    for modes in (Tuner((1,)), Tuner((2,)), None):
        ev = Evaluator(model, images[::4], labels[::4])
        if modes is not None:
            ev._trial_modes = modes
        results.append(ev.run(rates, method=method, plan=plan, trials=5, seed=11, start=2))
        if modes is not None and modes.candidates == (2,):
            assert len(ev._slots) == 2 and ev._slots[1][1] is not ev.x
            assert ev._slots[1][1].buffer_sets is not ev.x.buffer_sets and ev._slots[1][1].caches is ev.x.caches
            assert all(ev._slots[1][0][n] is not ev.buffers[n] for n in ev.buffers)
    assert _same(results[0], results[1]) and _same(results[0], results[2])
    assert np.unique(results[0].accuracy).size > 1  # the trials differ: a check that could fail


def test_real_codes_keep_their_trials_in_turn():
    images, labels = zoo.test_set()
    ev = Evaluator(zoo.load("lenet5"), images[::8], labels[::8])
    ev._trial_modes = Tuner((2,))
    plan = {ly.name: 2 for ly in zoo.load("lenet5").layers}
    res = ev.run(FlipRates.symmetric(0.05, 8), method="tac", plan=plan, trials=3, seed=1, code="secded-72-64")
    assert len(ev._slots) == 1 and res.accuracy.size == 3


def test_large_weights_keep_their_trials_in_turn(monkeypatch):
    """Side by side needs a copy of the faulty weights per extra thread: above the limit, trials stay in turn."""
    from wkbnoise.evaluation import campaign

    images, labels = zoo.test_set()
    ev = Evaluator(zoo.load("lenet5"), images[::8], labels[::8])
    ev._trial_modes = Tuner((2,))
    monkeypatch.setattr(campaign, "SIDE_BY_SIDE_MAX_BYTES", 1000)
    ev.run(FlipRates.symmetric(0.05, 8), trials=3, seed=1)
    assert len(ev._slots) == 1
    monkeypatch.setattr(campaign, "SIDE_BY_SIDE_MAX_BYTES", 1 << 30)
    ev.run(FlipRates.symmetric(0.05, 8), trials=3, seed=1)
    assert len(ev._slots) == 2
