"""NumPy twins of the Numba kernels (style.md section 3): written the obvious way, never copied from a kernel.

Each room appends its own section below. A twin defines the result; the kernel adds the speed.
"""

from __future__ import annotations

import math

import numpy as np

from wkbnoise._rng import alias_table, hash_ref, uniform_ref

def rel_err(a, b) -> float:
    """max |a - b| / max |b|: the normwise relative error of the runtime tests (shapes must agree)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))


# ---- faults room (issue 3): flip samplers and the fused flip + lookup -----------------------------------


def mask_law_ref(rates_k: np.ndarray) -> np.ndarray:
    """Law of an 8-bit flip mask whose bit j flips with rates_k[j] (len <= 8): float64[256]."""
    law = np.zeros(256)
    for m in range(2 ** len(rates_k)):
        prob = 1.0
        for j, r in enumerate(rates_k):
            prob *= r if (m >> j) & 1 else 1.0 - r
        law[m] = prob
    return law


def flip_mask_ref(codes: np.ndarray, p_down: np.ndarray, p_up: np.ndarray, key: int) -> np.ndarray:
    """The ``mask`` sampler: per element, per chunk of 8 planes and direction, one hash -> alias draw."""
    bits = p_down.size
    directions = [p_down] if np.array_equal(p_down, p_up) else [p_down, p_up]
    n_chunks = (bits + 7) // 8
    n_streams = n_chunks * len(directions)
    flat = codes.reshape(-1).astype(np.uint64)
    element = np.arange(flat.size, dtype=np.uint64)
    masks = [np.zeros(flat.size, dtype=np.uint64) for _ in directions]
    for ch in range(n_chunks):
        for d, rate in enumerate(directions):
            stream = ch * len(directions) + d
            threshold, alias = alias_table(mask_law_ref(rate[8 * ch: 8 * ch + 8]))
            h = hash_ref(key, element * np.uint64(n_streams) + np.uint64(stream))
            idx = (h >> np.uint64(56)).astype(np.int64)
            u = (h & np.uint64((1 << 53) - 1)).astype(np.float64) * 2.0**-53
            pick = np.where(u < threshold[idx], idx, alias[idx].astype(np.int64)).astype(np.uint64)
            masks[d] |= pick << np.uint64(8 * ch)
    mask = masks[0] if len(masks) == 1 else (masks[0] & flat) | (masks[1] & ~flat)
    return (flat ^ mask).astype(codes.dtype).reshape(codes.shape)


def flip_skip_ref(codes: np.ndarray, p_down: np.ndarray, p_up: np.ndarray, key: int, block: int) -> np.ndarray:
    """The ``skip`` sampler: per block and plane, geometric gaps then thinning, in plain Python."""
    bits = p_down.size
    flat = codes.reshape(-1)
    out = flat.copy()
    n = flat.size
    for b in range((n + block - 1) // block):
        start, stop = b * block, min(n, (b + 1) * block)
        for k in range(bits):
            p_max = max(p_down[k], p_up[k])
            if p_max == 0.0:
                continue
            bkey = int(hash_ref(key, np.array([b * bits + k], dtype=np.uint64))[0])
            log_q = math.log1p(-p_max)
            pos, j = start - 1, 0
            while True:
                u = float(uniform_ref(bkey, np.array([2 * j], dtype=np.uint64))[0])
                gap = math.log(1.0 - u) / log_q
                if gap >= stop - pos - 1:
                    break
                pos += 1 + int(gap)
                rate = p_down[k] if (int(flat[pos]) >> k) & 1 else p_up[k]
                accept = rate / p_max
                if accept >= 1.0 or float(uniform_ref(bkey, np.array([2 * j + 1], dtype=np.uint64))[0]) < accept:
                    out[pos] ^= 1 << k
                j += 1
    return out.reshape(codes.shape)


def flip_dequantize_ref(codes, p_down, p_up, lut, key, method, block):
    """Flip with the named sampler, then read every code through its channel's row of the table."""
    flipped = flip_mask_ref(codes, p_down, p_up, key) if method == "mask" else flip_skip_ref(codes, p_down, p_up, key,
                                                                                            block)
    lut2 = lut.reshape(-1, lut.shape[-1])
    rows = np.repeat(np.arange(lut2.shape[0]), flipped.size // lut2.shape[0])
    return lut2[rows, flipped.reshape(-1)].reshape(codes.shape)


# ---- runtime room (issue 4): im2col and depthwise convolution in the (C, N, H, W) layout -----------------


def im2col_cnhw_ref(x: np.ndarray, kh: int, kw: int, sh: int, sw: int, ph: int, pw: int) -> np.ndarray:
    """Columns (C*kh*kw, N, Ho, Wo) of x (C, N, H, W): row (c, i, j) holds x_pad[c, :, i + sh*oh, j + sw*ow]."""
    C, N, H, W = x.shape
    xp = np.zeros((C, N, H + 2 * ph, W + 2 * pw), dtype=x.dtype)
    xp[:, :, ph:ph + H, pw:pw + W] = x
    Ho, Wo = (H + 2 * ph - kh) // sh + 1, (W + 2 * pw - kw) // sw + 1
    rows = [xp[c, :, i:i + sh * Ho:sh, j:j + sw * Wo:sw] for c in range(C) for i in range(kh) for j in range(kw)]
    return np.stack(rows)


def depthwise_conv_cnhw_ref(x, w, bias, sh, sw, ph, pw) -> np.ndarray:
    """Depthwise conv of x (C, N, H, W) with w (C, 1, kh, kw), as a float64 sum over the window, + bias."""
    C, N, H, W = x.shape
    kh, kw = w.shape[2:]
    cols = im2col_cnhw_ref(x.astype(np.float64), kh, kw, sh, sw, ph, pw)  # (C*kh*kw, N, Ho, Wo)
    cols = cols.reshape((C, kh * kw) + cols.shape[1:])
    out = np.einsum("ckn...,ck->cn...", cols, w.reshape(C, kh * kw).astype(np.float64))
    return out + bias.astype(np.float64)[:, None, None, None]


def depthwise_conv_cnhw_f32_ref(x, w, bias, sh, sw, ph, pw) -> np.ndarray:
    """Float32 depthwise convolution in the kernel's order: the bias, then ``+ w * x`` tap by tap in (i, j)
    order (NumPy rounds each product and each sum to float32, as the kernel does)."""
    C, N, H, W = x.shape
    kh, kw = w.shape[2:]
    Ho, Wo = (H + 2 * ph - kh) // sh + 1, (W + 2 * pw - kw) // sw + 1
    out = np.broadcast_to(bias[:, None, None, None], (C, N, Ho, Wo)).astype(np.float32)
    cols = im2col_cnhw_ref(x, kh, kw, sh, sw, ph, pw).reshape(C, kh, kw, N, Ho, Wo)
    xp = np.zeros((C, N, H + 2 * ph, W + 2 * pw), bool)
    xp[:, :, ph:ph + H, pw:pw + W] = True
    for i in range(kh):
        for j in range(kw):
            inside = xp[:, :, i:i + sh * (Ho - 1) + 1:sh, j:j + sw * (Wo - 1) + 1:sw]
            term = out + w[:, 0, i, j][:, None, None, None] * cols[:, i, j]
            out = np.where(inside, term, out).astype(np.float32)
    return out


def winograd_input_cnhw_ref(x: np.ndarray, ph: int, pw: int) -> np.ndarray:
    """Winograd F(2x2, 3x3) input tiles of x (C, N, H, W) float32: (16, C, N, th, tw), element (a, b) of
    ``B^T d B`` in row ``4 a + b``, d the 4 x 4 window at (2 ty, 2 tx) of x zero-padded by (ph, pw) (and
    by zeros past its end). Float32, in the kernel's order: the row combinations of ``B^T`` first, then the
    column ones, each one addition or subtraction."""
    C, N, H, W = x.shape
    Ho, Wo = H + 2 * ph - 2, W + 2 * pw - 2
    th, tw = (Ho + 1) // 2, (Wo + 1) // 2
    xp = np.zeros((C, N, 2 * th + 2, 2 * tw + 2), np.float32)
    xp[:, :, ph:ph + H, pw:pw + W] = x
    # d[i][j]: (C, N, th, tw), element (i, j) of every tile
    d = [[xp[:, :, i:i + 2 * th:2, j:j + 2 * tw:2] for j in range(4)] for i in range(4)]
    rows = [[d[0][j] - d[2][j] for j in range(4)], [d[1][j] + d[2][j] for j in range(4)],
            [d[2][j] - d[1][j] for j in range(4)], [d[1][j] - d[3][j] for j in range(4)]]
    out = []
    for r in rows:
        out += [r[0] - r[2], r[1] + r[2], r[2] - r[1], r[1] - r[3]]
    return np.stack(out).astype(np.float32)


def winograd_output_cnhw_ref(m: np.ndarray, bias: np.ndarray, Ho: int, Wo: int) -> np.ndarray:
    """Winograd F(2x2, 3x3) outputs ``A^T m A + bias`` of products m (16, O, N, th, tw) float32:
    (O, N, Ho, Wo), in the kernel's order (sums left to right, the bias last)."""
    _, O, N, th, tw = m.shape
    s = [m[k] + m[4 + k] + m[8 + k] for k in range(4)]
    u = [m[4 + k] - m[8 + k] - m[12 + k] for k in range(4)]
    b = bias.astype(np.float32)[:, None, None, None]
    out = np.empty((O, N, 2 * th, 2 * tw), np.float32)
    out[:, :, 0::2, 0::2] = s[0] + s[1] + s[2] + b
    out[:, :, 0::2, 1::2] = s[1] - s[2] - s[3] + b
    out[:, :, 1::2, 0::2] = u[0] + u[1] + u[2] + b
    out[:, :, 1::2, 1::2] = u[1] - u[2] - u[3] + b
    return out[:, :, :Ho, :Wo]


def conv_cnhw_f64_ref(x, w, bias, ph, pw) -> np.ndarray:
    """Stride-1 convolution of x (C, N, H, W) with w (O, C, kh, kw) as a float64 sum over the window, + bias;
    also returns the float64 sum of ``|w| |x|`` per output (the scale of float32 rounding errors)."""
    C, N = x.shape[:2]
    O, _, kh, kw = w.shape
    cols = im2col_cnhw_ref(x.astype(np.float64), kh, kw, 1, 1, ph, pw)  # (C kh kw, N, Ho, Wo)
    w2 = w.reshape(O, -1).astype(np.float64)
    out = np.einsum("ok,k...->o...", w2, cols)
    scale = np.einsum("ok,k...->o...", np.abs(w2), np.abs(cols))
    if bias is not None:
        out = out + bias.astype(np.float64)[:, None, None, None]
        scale = scale + np.abs(bias.astype(np.float64))[:, None, None, None]
    return out, scale


def max_pool_hw_ref(x, kh, kw, sh, sw, pads) -> np.ndarray:
    """Max pooling of x (B, H, W): pad (top, left, bottom, right) with -inf, then ``np.maximum`` over the
    kh*kw strided views in (i, j) order."""
    t, lft, b, r = pads
    B, H, W = x.shape
    xp = np.full((B, H + t + b, W + lft + r), -np.inf, dtype=x.dtype)
    xp[:, t:t + H, lft:lft + W] = x
    Ho, Wo = (H + t + b - kh) // sh + 1, (W + lft + r - kw) // sw + 1
    views = [xp[:, i:i + sh * (Ho - 1) + 1:sh, j:j + sw * (Wo - 1) + 1:sw]
             for i in range(kh) for j in range(kw)]
    out = views[0].copy()
    for v in views[1:]:
        np.maximum(out, v, out=out)
    return out


def gelu_erf_ref(x: np.ndarray) -> np.ndarray:
    """Exact GELU ``0.5 x (1 + erf(x / sqrt 2))`` in float64 with scipy's erf."""
    from scipy import special

    x = np.asarray(x, dtype=np.float64)
    return 0.5 * x * (1.0 + special.erf(x / math.sqrt(2.0)))


def softmax_last_ref(x: np.ndarray) -> np.ndarray:
    """Softmax along the last axis, the NumPy expression: ``exp(x - max)`` over its ``sum`` (NumPy's
    reductions, float32)."""
    with np.errstate(invalid="ignore"):  # inf - inf in a row that holds inf: NaN, as in the kernels
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        e /= e.sum(axis=-1, keepdims=True)
    return e


def layer_norm_ref(x, w, b, eps):
    """LayerNorm over the last axis as NumPy statements, float32: ``mean``, ``x - mu``, the ``einsum``
    variance, then ``*= 1 / sqrt(var + eps)``, ``*= w``, ``+= b``."""
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        mu = x.mean(axis=-1, keepdims=True, dtype=np.float32)
        xc = x - mu
        var = np.einsum("...i,...i->...", xc, xc)[..., None] * np.float32(1.0 / x.shape[-1])
        xc *= 1.0 / np.sqrt(var + np.float32(eps))
        xc *= w
        xc += b
    return xc


def sequential_sum_ref(x: np.ndarray) -> np.ndarray:
    """Row sums of a 2-D float32 array added left to right in float32 (not NumPy's pairwise order)."""
    out = np.zeros(x.shape[0], np.float32)
    for j in range(x.shape[1]):
        out += x[:, j]
    return out


# ---- ecc room (issue 12): real codes, syndrome decoding, codeword storage of the protected planes -------


def syndrome_decoder_ref(parity: np.ndarray, t: int) -> dict:
    """Syndrome (bytes of the packed H e) -> error vector (uint8[n]) for every pattern of weight 1..t."""
    from itertools import combinations

    k, r = parity.shape
    h = np.concatenate([parity.T, np.eye(r, dtype=np.uint8)], axis=1)      # H = [P^T | I]
    table = {}
    for w in range(1, t + 1):
        for pos in combinations(range(k + r), w):
            e = np.zeros(k + r, dtype=np.uint8)
            e[list(pos)] = 1
            table[np.packbits(h @ e % 2).tobytes()] = e
    return table


def decode_ref(received: np.ndarray, parity: np.ndarray, table: dict) -> tuple[np.ndarray, int]:
    """Bounded-distance decoding of one received word (uint8[n]): (decoded word, corrected or -1)."""
    k, r = parity.shape
    h = np.concatenate([parity.T, np.eye(r, dtype=np.uint8)], axis=1)
    s = h @ received % 2
    if not s.any():
        return received.copy(), 0
    e = table.get(np.packbits(s).tobytes())
    if e is None:
        return received.copy(), -1
    return received ^ e, int(e.sum())


def flip_protected_ref(codes, p_down, p_up, m, parity, table, key):
    """Store the top m planes as codewords, flip every stored bit, decode, write the data back (plain NumPy).

    The read codes of the protected planes only (the unprotected planes are returned as stored).
    """
    bits = p_down.size
    k, r = parity.shape
    n = k + r
    flat = codes.reshape(-1).astype(np.int64)
    planes = np.arange(bits - m, bits)
    stream = ((flat[:, None] >> planes[None, :]) & 1).reshape(-1).astype(np.uint8)     # weight-major
    total = stream.size
    n_words = -(-total // k)
    data = np.zeros(n_words * k, dtype=np.uint8)
    data[:total] = stream
    data = data.reshape(n_words, k)
    valid = (np.arange(n_words * k) < total).reshape(n_words, k)
    check = data.astype(np.int64) @ parity % 2
    stored = np.concatenate([data, check.astype(np.uint8)], axis=1)
    plane_of = (np.arange(n_words * k) % m).reshape(n_words, k)
    rate_data = np.where(data == 1, p_down[planes][plane_of], p_up[planes][plane_of]) * valid
    pcd, pcu = p_down[planes].mean(), p_up[planes].mean()
    rate = np.concatenate([rate_data, np.where(check == 1, pcd, pcu)], axis=1)
    sub = hash_ref(key, np.array([(1 << 64) - 2], dtype=np.uint64))[0]
    counter = np.arange(n_words * n, dtype=np.uint64).reshape(n_words, n)
    received = stored ^ (uniform_ref(sub, counter) < rate).astype(np.uint8)
    out_data = np.empty_like(data)
    for w in range(n_words):
        dec, status = decode_ref(received[w], parity, table)
        if status > 0 and np.any(dec[:k][~valid[w]] != data[w][~valid[w]]):
            dec = received[w]          # a correction on a position the shortened word does not store
        out_data[w] = dec[:k]
    read = out_data.reshape(-1)[:total].reshape(-1, m).astype(np.int64)
    out = flat & ~np.int64(((1 << m) - 1) << (bits - m))
    out |= (read << planes[None, :]).sum(axis=1)
    return out.astype(codes.dtype).reshape(codes.shape)


def word_outcomes_ref(parity, table, t, p_down, p_up, n_words, key):
    """Tallies of simulate_words: random data words (hash), every stored bit flipped, decoded (plain NumPy)."""
    k, r = parity.shape
    n = k + r
    h = hash_ref(key, np.arange(n_words, dtype=np.uint64))
    data = ((h[:, None] >> np.arange(k, dtype=np.uint64)) & np.uint64(1)).astype(np.uint8)
    stored = np.concatenate([data, (data.astype(np.int64) @ parity % 2).astype(np.uint8)], axis=1)
    counter = np.uint64(n_words) + np.arange(n_words * n, dtype=np.uint64).reshape(n_words, n)
    err = (uniform_ref(key, counter) < np.where(stored == 1, p_down, p_up)).astype(np.uint8)
    out = {"words_over_t": 0, "words_wrong": 0, "data_bits_wrong": 0, "detected": 0, "miscorrected": 0,
           "data_bits_wrong_sq": 0}
    for w in range(n_words):
        dec, status = decode_ref(stored[w] ^ err[w], parity, table)
        wrong = dec != stored[w]
        out["words_over_t"] += int(err[w].sum() > t)
        out["words_wrong"] += int(wrong.any())
        out["data_bits_wrong"] += int(wrong[:k].sum())
        out["data_bits_wrong_sq"] += int(wrong[:k].sum()) ** 2
        out["detected"] += int(status < 0)
        out["miscorrected"] += int(status > 0 and wrong.any())
    return out
