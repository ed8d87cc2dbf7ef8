"""Chunks of a forward pass side by side on threads: the same outputs as one thread, bit for bit."""

from __future__ import annotations

import copy
import threading
import time

import numba
import numpy as np
import pytest
from threadpoolctl import ThreadpoolController

from wkbnoise import zoo
from wkbnoise.errors import InputError
from wkbnoise.parallel import map_chunks, serial_blas

CTL = ThreadpoolController().select(user_api="blas")


def blas_threads() -> int:
    return max(int(i["num_threads"]) for i in CTL.info())


def test_map_chunks_keeps_order_uses_every_thread_and_one_blas_thread():
    before = blas_threads()
    seen = []

    def fn(k, slot):
        seen.append((slot, threading.get_ident(), blas_threads(), numba.get_num_threads()))
        time.sleep(0.01)  # releases the GIL, as a matrix product does
        return k * k

    assert map_chunks(fn, 9, 3) == [k * k for k in range(9)]
    assert {s[0] for s in seen} == {0, 1, 2} and len({s[1] for s in seen}) == 3
    assert {(s[2], s[3]) for s in seen} == {(1, 1)}  # one BLAS and one Numba thread inside
    assert blas_threads() == before  # restored
    assert map_chunks(fn, 0, 2) == [] and map_chunks(fn, 2, 8) == [0, 1]


def test_map_chunks_raises_the_first_error_after_every_thread_stopped():
    ran = set()

    def fn(k, slot):
        ran.add(threading.get_ident())
        if k == 3:
            raise ValueError("chunk 3")
        time.sleep(0.005)
        return k

    with pytest.raises(ValueError, match="chunk 3"):
        map_chunks(fn, 20, 2)
    alive = {t.ident for t in threading.enumerate() if t.is_alive()}
    assert not (ran - {threading.get_ident()}) & alive  # the helper has stopped


@pytest.mark.parametrize("name", ["lenet5", "vgg", "resnet20", "mobilenetv2", "vit"])
def test_forward_is_the_same_at_every_thread_count(name):
    """Bit for bit at every thread count, the same chunks (vgg's 32-channel 28 x 28 layer runs as Winograd
    in chunks of 16 images: its 16 GEMMs too)."""
    model = zoo.load(name)
    images, _ = zoo.test_set()
    x = model.preprocess(images[:70])
    with serial_blas():
        ref = model(x, batch_size=16, threads=1)
    for threads in (2, 3):
        assert np.array_equal(model(x, batch_size=16, threads=threads), ref)
    prepared = model.prepare(x, 16)
    assert np.array_equal(model(prepared, threads=3), ref)
    assert len(prepared.buffer_sets) == 3  # scratch arrays per thread, never shared
    assert np.array_equal(model(prepared, threads=2), ref)
    # the check can fail: another batch's outputs differ
    assert not np.array_equal(model(model.preprocess(images[1:71]), batch_size=16, threads=2), ref)


def test_work_arrays_are_kept_per_calling_thread():
    """A forward pass lends its im2col columns from work arrays the model keeps for the calling thread (one
    set per chunk thread): the next call reuses them, and two threads calling at once never share one."""
    model = zoo.load("vgg")
    images, _ = zoo.test_set()
    x, y = model.preprocess(images[:3]), model.preprocess(images[3:6])
    ref_x, ref_y = model(x, threads=1), model(y, threads=1)
    sets = model._scratch.sets
    work = sets[0]["cols"]
    assert len(sets) == 1 and work.size > 0
    assert np.array_equal(model(x, threads=1), ref_x) and model._scratch.sets[0]["cols"] is work  # reused
    model(np.concatenate([x, y] * 40), batch_size=40, threads=2)  # two chunk threads, larger columns
    assert len(sets) == 2 and sets[0]["cols"].size > work.size and sets[1]["cols"] is not sets[0]["cols"]
    work = sets[0]["cols"]

    got, other = {}, []

    def worker(name, arr):
        for _ in range(20):
            got.setdefault(name, []).append(model(arr, threads=1))
        other.append(model._scratch.sets[0]["cols"])

    threads = [threading.Thread(target=worker, args=("x", x)), threading.Thread(target=worker, args=("y", y))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(np.array_equal(a, ref_x) for a in got["x"]) and all(np.array_equal(a, ref_y) for a in got["y"])
    assert len({id(a) for a in [work, *other]}) == 3  # each thread its own
    assert not np.array_equal(ref_x, ref_y)  # the check can fail: the two inputs give different outputs
    twin = copy.deepcopy(model)  # copies without the scratch: a fresh store of its own
    assert np.array_equal(twin(x, threads=1), ref_x) and twin._scratch.sets[0]["cols"] is not work


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_threads_is_checked(bad):
    model = zoo.load("lenet5")
    x = model.preprocess(zoo.test_set()[0][:4])
    with pytest.raises(InputError, match="threads"):
        model(x, threads=bad)


def test_chunks_in_turn_run_the_numba_kernels_on_one_thread(monkeypatch):
    """One thread pool at a time: with one chunk (or threads=1) the BLAS library keeps its threads and the
    Numba kernels run on the calling thread; side by side, every chunk's thread runs one Numba thread. The
    caller's count is restored, and chunks in turn and side by side give the same outputs."""
    from wkbnoise.parallel import threads
    from wkbnoise.runtime import layers

    seen = []
    kernel = layers._kernels.depthwise_conv_cnhw

    class Spy:
        def __getattr__(self, name):
            return getattr(layers_kernels, name)

        @staticmethod
        def depthwise_conv_cnhw(*args):
            seen.append(numba.get_num_threads())
            return kernel(*args)

    layers_kernels = layers._kernels
    monkeypatch.setattr(layers, "_kernels", Spy())
    model = zoo.load("mobilenetv2")
    x = model.preprocess(zoo.test_set()[0][:8])
    with threads(2 if numba.config.NUMBA_NUM_THREADS >= 2 else 1) as n:
        one = model.forward(x, batch_size=8)
        in_turn = model.forward(x, batch_size=4, threads=1)
        side = model.forward(x, batch_size=4, threads=2)
        assert numba.get_num_threads() == n
    assert seen and set(seen) == {1}
    assert one.shape == in_turn.shape and np.array_equal(in_turn, side)  # same chunks: the same bits


def test_default_chunks_of_large_inputs_stay_under_the_byte_cap():
    """Without a batch size, chunks hold the default 200 inputs unless that exceeds CHUNK_INPUT_BYTES: MNIST
    images keep 200 (the zoo's published numbers), 224 x 224 RGB images go 3 to a chunk."""
    from wkbnoise.runtime.base import CHUNK_INPUT_BYTES

    model = zoo.load("lenet5")
    images = model.preprocess(zoo.test_set()[0][:300])
    assert model.prepare(images).batch_size == 200
    big = {"x": np.zeros((1, 3, 224, 224), np.float32)}
    assert model._batch(None, big) == CHUNK_INPUT_BYTES // (3 * 224 * 224 * 4) == 3
    assert model._batch(None, {"x": np.zeros((1, 64, 512, 512), np.float32)}) == 1
    assert model._batch(7, big) == 7
