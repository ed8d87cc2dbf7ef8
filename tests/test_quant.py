"""Quantization: exhaustive round trip and clipping for B <= 8, encodings, per-channel scales, refusals."""

from __future__ import annotations

import numpy as np
import pytest

from wkbnoise import InputError
from wkbnoise.quant import QuantizedTensor, code_histogram, codes_to_values, quantize, values_to_codes
from wkbnoise.theory import code_values


@pytest.mark.parametrize("bits", range(2, 9))
@pytest.mark.parametrize("encoding", ["twos", "signmag"])
def test_round_trip_every_value(bits, encoding):
    q_max = 2 ** (bits - 1) - 1
    q = np.arange(-q_max, q_max + 1)
    codes = values_to_codes(q, bits, encoding)
    assert codes.dtype == np.uint8 and len(set(codes.tolist())) == q.size
    np.testing.assert_array_equal(codes_to_values(codes, bits, encoding), q)
    # every pattern's value, written the obvious way
    for c in range(2**bits):
        if encoding == "twos":
            expect = c - 2**bits if c >= 2 ** (bits - 1) else c
        else:
            expect = -(c & (2 ** (bits - 1) - 1)) if c >> (bits - 1) else c
        assert code_values(bits, encoding)[c] == expect


@pytest.mark.parametrize("bits", range(2, 9))
def test_quantize_exhaustive_grid_and_clipping(bits):
    q_max = 2 ** (bits - 1) - 1
    s = 0.37
    w = np.arange(-q_max, q_max + 1) * s
    qt = quantize(w, bits)
    assert np.isclose(float(qt.scale), s, rtol=1e-6) and qt.scale.dtype == np.float32 and qt.scale.shape == ()
    np.testing.assert_array_equal(qt.values, np.arange(-q_max, q_max + 1))
    # values between steps round to the nearest step, values never leave -q_max..q_max
    w2 = np.concatenate([w + 0.49 * s, w - 0.49 * s])
    w2 = np.clip(w2, -q_max * s, q_max * s)
    q2 = codes_to_values(quantize(w2, bits).codes, bits)
    assert q2.min() >= -q_max and q2.max() <= q_max
    np.testing.assert_allclose(quantize(w2, bits).dequantize(), w2, atol=0.5 * s * 1.0001)


def test_int8_view_and_dtypes():
    qt = quantize(np.array([-1.0, -0.5, 0.0, 1.0], dtype=np.float32))
    assert qt.codes.dtype == np.uint8 and qt.values.dtype == np.int8
    np.testing.assert_array_equal(qt.values, [-127, -64, 0, 127])
    np.testing.assert_array_equal(qt.codes, [129, 192, 0, 127])
    q16 = quantize(np.linspace(-1, 1, 11), bits=12)
    assert q16.codes.dtype == np.uint16 and int(q16.codes.max()) < 2**12
    np.testing.assert_array_equal(q16.values, np.rint(np.linspace(-1, 1, 11) * 2047))


def test_sign_magnitude_codes():
    qt = quantize(np.array([-1.0, 1.0, -0.0]), bits=8, encoding="signmag")
    np.testing.assert_array_equal(qt.codes, [0xFF, 0x7F, 0])
    np.testing.assert_array_equal(qt.values, [-127, 127, 0])


def test_per_channel_scales():
    w = np.array([[1.0, -2.0], [0.5, 0.25], [0.0, 0.0]], dtype=np.float32)
    qt = quantize(w, per_channel=True)
    np.testing.assert_allclose(qt.scale, [2 / 127, 0.5 / 127, 0.0], rtol=1e-6)
    np.testing.assert_array_equal(qt.values, [[64, -127], [127, 64], [0, 0]])
    np.testing.assert_allclose(qt.dequantize(), w, atol=1 / 127)


def test_code_histogram():
    qt = quantize(np.array([0.0, 0.0, 1.0, -1.0]))
    h = code_histogram(qt)
    assert h.shape == (256,) and h.sum() == 1.0 and h[0] == 0.5 and h[127] == 0.25 and h[129] == 0.25


@pytest.mark.parametrize("kw", [dict(w=np.arange(4)), dict(w=np.array([np.nan])), dict(bits=1), dict(bits=17),
                                dict(bits=8.0), dict(encoding="ones"), dict(per_channel=1)])
def test_quantize_refuses(kw):
    args = dict(w=np.ones(4, dtype=np.float32)) | kw
    w = args.pop("w")
    with pytest.raises(InputError):
        quantize(w, **args)


def test_values_to_codes_refuses_out_of_range():
    with pytest.raises(InputError, match="-127..127"):
        values_to_codes(np.array([-128]), 8)
    with pytest.raises(InputError):
        codes_to_values(np.array([1], dtype=np.int64), 8)
    with pytest.raises(InputError):
        code_histogram(np.zeros(3))
    assert isinstance(quantize(np.zeros(3)), QuantizedTensor)
