"""Build ``tables.safetensors``: the parity matrices of the real codes, from ``galois`` (run once, committed).

Run ``python -m wkbnoise.codes.make_tables`` (needs the ``codes`` extra: ``pip install galois``). Each code is
a systematic binary BCH code of ``galois``, shortened by dropping its first ``s`` message positions:

- ``secded-72-64``: BCH(127, 119) with roots ``1, alpha, alpha^2`` (generator ``(x + 1) m_1(x)``, the
  even-weight subcode of the cyclic Hamming code, minimum distance 4), shortened by 55 to (72, 64);
- ``secded-39-32``: the same over GF(2^6), BCH(63, 56), shortened by 24 to (39, 32);
- ``bch-64-t2``: narrow-sense BCH(127, 113), t = 2, shortened by 49 to (78, 64);
- ``bch-64-t3``: narrow-sense BCH(127, 106), t = 3, shortened by 42 to (85, 64).

The file stores, per code, ``<name>/parity``: uint8[k, n - k], the parity part ``P`` of the shortened
generator matrix ``G = [I_k | P]`` (a codeword is ``[data, data @ P mod 2]``), and in its metadata the
full-length code, the shortening, ``t`` and the generator polynomial. At run time nothing else is needed:
the parity-check matrix is ``H = [P^T | I_(n-k)]``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

#: name -> (full n, full k, first root power c, shortened n, shortened k)
SPECS = {
    "secded-72-64": (127, 119, 0, 72, 64),
    "secded-39-32": (63, 56, 0, 39, 32),
    "bch-64-t2": (127, 113, 1, 78, 64),
    "bch-64-t3": (127, 106, 1, 85, 64),
}
TABLE_FILE = Path(__file__).with_name("tables.safetensors")


def galois_code(name: str):
    """The full-length ``galois.BCH`` of a code and its shortening ``s`` (needs galois)."""
    import galois

    n, k, c, n_s, k_s = SPECS[name]
    return galois.BCH(n, k, c=c), n - n_s


def build() -> tuple[dict, dict]:
    """(tensors, metadata) of the table file."""
    tensors, meta = {}, {}
    for name, (n, k, c, n_s, k_s) in SPECS.items():
        bch, s = galois_code(name)
        g = np.asarray(bch.G)[s:, s:].astype(np.uint8)
        assert g.shape == (k_s, n_s) and np.array_equal(g[:, :k_s], np.eye(k_s, dtype=np.uint8))
        tensors[f"{name}/parity"] = np.ascontiguousarray(g[:, k_s:])
        meta[name] = {"n": n_s, "k": k_s, "t": int(bch.t), "d": int(bch.d), "full_n": n, "full_k": k, "c": c,
                      "shortened_by": s, "generator_poly": str(bch.generator_poly)}
    return tensors, meta


def main() -> None:
    """Write the table file next to this module."""
    from safetensors.numpy import save_file

    tensors, meta = build()
    save_file(tensors, str(TABLE_FILE), metadata={"codes": json.dumps(meta, sort_keys=True)})


if __name__ == "__main__":
    main()
