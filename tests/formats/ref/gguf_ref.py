"""Independent ggml Q8_0 / Q4_0 reference (numpy), written from ggml's definitions
(ggml-common.h block layouts, ggml-quants.c quantize_row_q8_0_ref / quantize_row_q4_0_ref), in
the manner of gguf-py's quants.py. Q4_0 in two evaluations of x * id + 8.5f: two f32 roundings
("separate") or one (a fused multiply-add, "fused", via the exact float64 product).

usage: gguf_ref.py DIR   (DIR/rows.f32, length a multiple of 32)
"""
import sys

import numpy as np

f32 = np.float32


def roundf(v):  # C roundf: half away from zero (float64 keeps |v| + 0.5 exact)
    a = np.abs(v.astype(np.float64))
    return np.sign(v) * np.floor(a + 0.5)


def q8_0(blocks):
    amax = np.max(np.abs(blocks), axis=1, keepdims=True)
    d = (amax / f32(127)).astype(f32)
    with np.errstate(divide="ignore"):
        idv = np.where(d == 0, f32(0), f32(1) / d).astype(f32)
    qs = roundf((blocks * idv).astype(f32)).astype(np.int8)
    d16 = d.astype(np.float16)
    out = np.concatenate([d16.view(np.uint8), qs.view(np.uint8)], axis=1)
    deq = (qs.astype(f32) * d16.astype(f32)).astype(f32)
    return out, deq


def q4_0(blocks, fused):
    imax = np.argmax(np.abs(blocks), axis=1)[:, None]  # first index of the largest magnitude
    mx = np.take_along_axis(blocks, imax, axis=1)
    d = (mx / f32(-8)).astype(f32)
    with np.errstate(divide="ignore"):
        idv = np.where(d == 0, f32(0), f32(1) / d).astype(f32)
    if fused:
        shifted = (blocks.astype(np.float64) * idv.astype(np.float64) + 8.5).astype(f32)
    else:
        shifted = ((blocks * idv).astype(f32) + f32(8.5)).astype(f32)
    q = np.minimum(np.trunc(shifted).astype(np.int32), 15).astype(np.uint8)
    packed = (q[:, :16] | (q[:, 16:] << 4)).astype(np.uint8)
    d16 = d.astype(np.float16)
    out = np.concatenate([d16.view(np.uint8), packed], axis=1)
    deq = ((q.astype(np.int32) - 8).astype(f32) * d16.astype(f32)).astype(f32)
    return out, deq


def main():
    d = sys.argv[1]
    blocks = np.fromfile(f"{d}/rows.f32", dtype=f32).reshape(-1, 32)
    out, deq = q8_0(blocks)
    out.tofile(f"{d}/q8_0.bin")
    deq.tofile(f"{d}/q8_0_deq.f32")
    for name, fused in (("separate", False), ("fused", True)):
        out, deq = q4_0(blocks, fused)
        out.tofile(f"{d}/q4_0_{name}.bin")
        deq.tofile(f"{d}/q4_0_{name}_deq.f32")


if __name__ == "__main__":
    main()
