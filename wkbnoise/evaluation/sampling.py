"""Which images an evaluation reads: seeded random samples, stratified by label where labels exist.

The bundled test set is sorted by class, so its first ``n`` images are not a sample of it; every image
subset (the ``--images`` of a run, the calibration inputs, the theory checks' inputs) goes through
:func:`sample_indices` instead. A request for more images than there are is refused, never clipped.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError

__all__ = ["sample_indices", "label_histogram", "SAMPLE_TAGS"]

#: stream tags of :func:`sample_indices`, so that test and calibration samples of one seed are independent
SAMPLE_TAGS = {"test": 0x7E57, "calibration": 0xCA11}


def sample_indices(n_total: int, n: int, *, labels=None, seed: int = 0, what: str = "test",
                   source: str = "the data") -> np.ndarray:
    """Indices of a seeded random sample of ``n`` out of ``n_total`` items, sorted.

    With ``labels``, the sample is stratified: class ``c`` with ``n_c`` items gets ``floor(n n_c / N)``
    places, and the places left go to the classes with the largest remainders (ties to the smaller
    class label), so every class keeps its share to within one item. Within a class the items are drawn
    without replacement. ``n == n_total`` returns every index.

    Parameters
    ----------
    n_total : int
        Items available.
    n : int
        Items wanted, ``1 <= n <= n_total``.
    labels : array_like of int, optional
        Class label per item (length ``n_total``).
    seed : int
        Root seed; the stream also depends on ``what``.
    what : {"test", "calibration"}
        Which sample (independent streams for one seed).
    source : str
        Where the items come from, for the error message.

    Returns
    -------
    ndarray of int64, shape (n,)

    Raises
    ------
    InputError
        If ``n`` is not in ``1..n_total``, or ``labels`` does not have ``n_total`` entries.
    """
    n_total, n = int(n_total), int(n)
    if n < 1 or n > n_total:
        raise InputError(f"{what} images: {n} asked for, but {source} holds {n_total}; ask for 1..{n_total} "
                         "(a sample is never padded or clipped).")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), SAMPLE_TAGS.get(what, 0)]))
    if n == n_total:
        return np.arange(n_total, dtype=np.int64)
    if labels is None:
        return np.sort(rng.choice(n_total, size=n, replace=False)).astype(np.int64)
    labels = np.asarray(labels)
    if labels.shape != (n_total,):
        raise InputError(f"labels has shape {labels.shape} for {n_total} items; give one label per item.")
    classes, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    quota = n * counts / n_total
    take = np.floor(quota).astype(np.int64)
    left = n - int(take.sum())
    if left:
        order = np.lexsort((classes, -(quota - take)))  # largest remainder first, ties to the smaller label
        take[order[:left]] += 1
    picked = [rng.choice(np.flatnonzero(inverse == c), size=int(k), replace=False) for c, k in enumerate(take) if k]
    return np.sort(np.concatenate(picked)).astype(np.int64)


def label_histogram(labels) -> dict[int, int]:
    """Items per class label, ``{label: count}`` in label order (empty without labels)."""
    if labels is None:
        return {}
    classes, counts = np.unique(np.asarray(labels), return_counts=True)
    return {int(c): int(k) for c, k in zip(classes, counts, strict=True)}
