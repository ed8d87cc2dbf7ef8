"""Image samples: seeded, stratified by label, never clipped; the bundled test set is sorted by class."""

from __future__ import annotations

import numpy as np
import pytest

from wkbnoise import InputError, zoo
from wkbnoise.evaluation.sampling import label_histogram, sample_indices


def _proportional_ok(hist_sample, hist_all, n, n_total):
    """Every class holds its share n * n_c / N to within one image."""
    return all(abs(hist_sample.get(c, 0) - n * k / n_total) < 1 for c, k in hist_all.items())


@pytest.mark.parametrize("n", [1, 7, 200, 333, 500, 999])
def test_stratified_sample_of_the_bundled_test_set(n):
    images, labels = zoo.test_set()
    idx = sample_indices(len(images), n, labels=labels, seed=0)
    assert idx.size == n and np.unique(idx).size == n and np.all(np.diff(idx) > 0)
    assert 0 <= idx.min() and idx.max() < len(images)
    assert sum(label_histogram(labels[idx]).values()) == n
    assert _proportional_ok(label_histogram(labels[idx]), label_histogram(labels), n, len(labels))


def test_first_n_is_not_a_sample():
    """The check bites: the first 200 images of the sorted test set hold two classes only."""
    _, labels = zoo.test_set()
    first = label_histogram(labels[:200])
    assert set(first) <= {0, 1, 2}
    assert not _proportional_ok(first, label_histogram(labels), 200, len(labels))
    assert label_histogram(labels[sample_indices(1000, 200, labels=labels)]) == {c: 20 for c in range(10)}


def test_seeded_and_streams_independent():
    _, labels = zoo.test_set()
    a = sample_indices(1000, 100, labels=labels, seed=3)
    np.testing.assert_array_equal(a, sample_indices(1000, 100, labels=labels, seed=3))
    assert not np.array_equal(a, sample_indices(1000, 100, labels=labels, seed=4))
    c = sample_indices(256, 64, seed=3, what="calibration")
    assert c.size == 64 and np.unique(c).size == 64
    assert not np.array_equal(c, sample_indices(256, 64, seed=3, what="test"))
    np.testing.assert_array_equal(sample_indices(50, 50, labels=np.zeros(50, int)), np.arange(50))


def test_unlabeled_sample_is_uniform():
    """Without labels every item is equally likely: inclusion frequencies over 400 seeds are n/N."""
    counts = np.zeros(40)
    for seed in range(400):
        counts[sample_indices(40, 10, seed=seed, what="calibration")] += 1
    p = 10 / 40
    sd = np.sqrt(400 * p * (1 - p))
    assert np.all(np.abs(counts - 400 * p) < 5 * sd)


def test_unequal_classes_largest_remainder():
    labels = np.array([0] * 7 + [1] * 2 + [2] * 1)
    idx = sample_indices(10, 5, labels=labels, seed=1)
    # quotas 3.5, 1.0, 0.5: floors 3, 1, 0; one place left goes to class 0 (remainder 0.5, smaller label)
    assert label_histogram(labels[idx]) == {0: 4, 1: 1}


def test_refused_never_clipped():
    with pytest.raises(InputError, match="1000 asked for|holds 1000"):
        sample_indices(1000, 1001, labels=np.zeros(1000, int), source="the bundled test set")
    with pytest.raises(InputError, match="1..256"):
        sample_indices(256, 300, what="calibration")
    with pytest.raises(InputError):
        sample_indices(10, 0)
    with pytest.raises(InputError, match="one label per item"):
        sample_indices(10, 3, labels=np.zeros(9, int))
