"""Independent FP8 reference (OCP OFP8 v1.0 / torch float8_e4m3fn, float8_e5m2 semantics).

Decoding follows the spec formula; encoding searches the table of all finite values for the
nearest one (exact comparisons in float64), ties to the even code, saturating at +-max.
Scaled quantization follows vLLM / llm-compressor: scale = amax / max (f32), x / scale (f32).

usage: fp8_ref.py DIR     (reads DIR/values.f32, DIR/matrix.f32, DIR/shape.txt)
"""
import math
import sys

import numpy as np

FORMATS = {"e4m3": (4, 3, 7), "e5m2": (5, 2, 15)}


def decode(fmt, code):
    e_bits, m_bits, bias = FORMATS[fmt]
    sign = -1.0 if code & 0x80 else 1.0
    e = (code >> m_bits) & ((1 << e_bits) - 1)
    m = code & ((1 << m_bits) - 1)
    if fmt == "e4m3" and (code & 0x7F) == 0x7F:
        return math.nan
    if fmt == "e5m2" and e == 31:
        return math.nan if m else sign * math.inf
    if e == 0:
        return sign * (m / 2**m_bits) * 2.0 ** (1 - bias)
    return sign * (1 + m / 2**m_bits) * 2.0 ** (e - bias)


def magnitude_table(fmt):
    """Finite non-negative values; index == code (codes 0..max are increasing)."""
    max_code = 0x7E if fmt == "e4m3" else 0x7B
    return np.array([decode(fmt, c) for c in range(max_code + 1)], dtype=np.float64)


def encode(fmt, x):
    x = np.asarray(x, dtype=np.float32).astype(np.float64)
    table = magnitude_table(fmt)
    a = np.abs(x)
    hi = np.clip(np.searchsorted(table, a, side="left"), 0, len(table) - 1)
    lo = np.clip(hi - 1, 0, len(table) - 1)
    d_lo = a - table[lo]
    d_hi = table[hi] - a
    pick_hi = (d_hi < d_lo) | ((d_hi == d_lo) & (hi % 2 == 0))
    code = np.where(pick_hi, hi, lo)
    code = np.where(a >= table[-1], len(table) - 1, code)  # saturate (and +-inf)
    code = np.where(a == table[hi], hi, code)
    code = code.astype(np.uint8) | np.where(np.signbit(x), 0x80, 0).astype(np.uint8)
    return np.where(np.isnan(x), np.where(np.signbit(x), 0xFF, 0x7F), code).astype(np.uint8)


def scaled(fmt, x):
    fmax = np.float32(448.0 if fmt == "e4m3" else 57344.0)
    amax = np.max(np.abs(x)).astype(np.float32)
    scale = np.float32(amax / fmax) if amax > 0 else np.float32(1.0)
    return encode(fmt, (x / scale).astype(np.float32)), scale


def main():
    d = sys.argv[1]
    for fmt in FORMATS:
        np.array([decode(fmt, c) for c in range(256)], dtype=np.float32).tofile(f"{d}/decode_{fmt}.f32")
        values = np.fromfile(f"{d}/values.f32", dtype=np.float32)
        encode(fmt, values).tofile(f"{d}/enc_{fmt}.u8")
    n, k = (int(v) for v in open(f"{d}/shape.txt").read().split())
    w = np.fromfile(f"{d}/matrix.f32", dtype=np.float32).reshape(n, k)
    for fmt in FORMATS:
        codes, scale = scaled(fmt, w)
        codes.tofile(f"{d}/pt_{fmt}.u8")
        np.array([scale], dtype=np.float32).tofile(f"{d}/pt_{fmt}_scale.f32")
        rows = [scaled(fmt, w[r]) for r in range(n)]
        np.stack([c for c, _ in rows]).tofile(f"{d}/pc_{fmt}.u8")
        np.array([s for _, s in rows], dtype=np.float32).tofile(f"{d}/pc_{fmt}_scale.f32")
    # vLLM dynamic per-token: scale = max(amax / 448, 1 / (448 * 512)).
    min_scale = np.float32(1.0) / np.float32(448.0 * 512.0)
    codes, scales = [], []
    for r in range(n):
        s = max(np.float32(np.max(np.abs(w[r])) / np.float32(448.0)), min_scale)
        codes.append(encode("e4m3", (w[r] / s).astype(np.float32)))
        scales.append(s)
    np.stack(codes).tofile(f"{d}/tok_e4m3.u8")
    np.array(scales, dtype=np.float32).tofile(f"{d}/tok_e4m3_scale.f32")


if __name__ == "__main__":
    main()
