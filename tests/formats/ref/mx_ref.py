"""Independent MXFP4 / NVFP4 reference (numpy), from the OCP Microscaling spec v1.0 and
NVIDIA TensorRT Model Optimizer's NVFP4 recipe.

E2M1 values {0, .5, 1, 1.5, 2, 3, 4, 6}: nearest by exhaustive search over the table, ties to
the even code, saturating; sign bit from the input's sign bit. Two per byte, low nibble first.
MXFP4: blocks of 32, shared exponent floor(log2(amax)) - 2 via frexp, clamped to [-127, 127],
E8M0 code = exponent + 127 (0 for all-zero blocks, 0xFF for non-finite ones).
NVFP4: g = amax / (6 * 448); per 16: s = E4M3(amax_b / (6 * g)) (1.0 if 0); x / (s * g)
(zero elements when s underflows to E4M3 zero).

usage: mx_ref.py DIR   (DIR/matrix.f32, DIR/shape.txt)
"""
import sys

import numpy as np

sys.path.insert(0, __import__("os").path.dirname(__file__))
from fp8_ref import decode as fp8_decode, encode as fp8_encode  # noqa: E402

f32 = np.float32
E2M1 = np.array([0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0])


def e2m1(x):
    a = np.abs(x.astype(np.float64))
    d = np.abs(a[..., None] - E2M1)  # exact in float64
    best = d.min(axis=-1, keepdims=True)
    cand = d == best
    # ties: prefer the even code; the candidates of a tie are adjacent, so take the even one
    idx = np.where(cand[..., ::2].any(axis=-1), np.argmax(cand & (np.arange(8) % 2 == 0), axis=-1), np.argmax(cand, axis=-1))
    idx = np.where(a >= 6.0, 7, idx)
    idx = np.where(np.isnan(a), 0, idx)
    return (idx | np.where(np.signbit(x), 8, 0)).astype(np.uint8)


def pack(codes):
    return (codes[..., 0::2] | (codes[..., 1::2] << 4)).astype(np.uint8)


def mxfp4(w):
    blocks = w.reshape(-1, 32)
    codes = np.zeros(blocks.shape, dtype=np.uint8)
    scales = np.zeros(len(blocks), dtype=np.uint8)
    for b, x in enumerate(blocks):
        amax = np.max(np.abs(x))
        if not np.all(np.isfinite(x)):
            scales[b] = 0xFF
        elif amax == 0:
            scales[b] = 0
            codes[b] = e2m1(x)
        else:
            _, e = np.frexp(amax)
            shared = int(np.clip(e - 1 - 2, -127, 127))
            scales[b] = shared + 127
            codes[b] = e2m1((x.astype(np.float64) * 2.0**-shared).astype(f32))
    return pack(codes.reshape(w.shape)), scales


def nvfp4(w):
    amax = np.max(np.abs(w))
    g = f32(amax / f32(6.0 * 448.0)) if amax > 0 else f32(1.0)
    blocks = w.reshape(-1, 16)
    codes = np.zeros(blocks.shape, dtype=np.uint8)
    scales = np.zeros(len(blocks), dtype=np.uint8)
    for b, x in enumerate(blocks):
        s = f32(np.max(np.abs(x)) / f32(f32(6.0) * g))
        if s == 0:
            s = f32(1.0)
        scales[b] = fp8_encode("e4m3", np.array([s], dtype=f32))[0]
        divisor = f32(f32(fp8_decode("e4m3", int(scales[b]))) * g)
        if divisor > 0:  # a scale that underflows to E4M3 zero leaves zero elements
            codes[b] = e2m1((x / divisor).astype(f32))
    return pack(codes.reshape(w.shape)), scales, g


def main():
    d = sys.argv[1]
    n, k = (int(v) for v in open(f"{d}/shape.txt").read().split())
    w = np.fromfile(f"{d}/matrix.f32", dtype=f32).reshape(n, k)
    probe = np.fromfile(f"{d}/probe.f32", dtype=f32)
    e2m1(probe).tofile(f"{d}/probe_e2m1.u8")
    packed, scales = mxfp4(w)
    packed.tofile(f"{d}/mx_packed.u8")
    scales.tofile(f"{d}/mx_scales.u8")
    packed, scales, g = nvfp4(w)
    packed.tofile(f"{d}/nv_packed.u8")
    scales.tofile(f"{d}/nv_scales.u8")
    np.array([g], dtype=f32).tofile(f"{d}/nv_global.f32")


if __name__ == "__main__":
    main()
