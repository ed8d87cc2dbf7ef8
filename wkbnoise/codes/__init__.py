"""Real error-correcting codes for the protected planes: Hamming SECDED and binary BCH, decoded bit by bit.

:mod:`wkbnoise.ecc` holds the analytic model of a code (check-bit cost, binomial residual rates);
this package holds the codes themselves (:func:`real_code`: tables built once from ``galois`` by
:mod:`wkbnoise.codes.make_tables` and committed) and the storage of a layer's protected planes as
codewords whose every bit flips before decoding (:func:`read_stored`).
"""

from .block import REAL_CODES, BlockCode, real_code
from .storage import flip_protected, read_stored, words_of

__all__ = ["BlockCode", "real_code", "REAL_CODES", "flip_protected", "read_stored", "words_of"]
