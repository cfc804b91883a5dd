"""Independent numpy dequantizers of ggml's block types, written from ggml's definitions
(ggml-common.h block structs, ggml-quants.c dequantize_row_*), vectorized over whole arrays of
blocks in the manner of gguf-py's quants.py. Every product and sum is a float32 operation in the
order the C code evaluates it, so results are bit-identical to ggml's reference C.

Library use: dequantize(type_name, raw_bytes, n_values) -> float32 array.
Script use:  ggml_dequant_ref.py DIR TYPE N [TYPE N ...]   for each pair reads DIR/TYPE.bin (raw
             blocks of N values) and writes DIR/TYPE.f32.
"""
import sys

import numpy as np

f32 = np.float32
QK_K = 256

# (values per block, bytes per block), ggml's type traits.
SIZES = {
    "F32": (1, 4), "F16": (1, 2), "BF16": (1, 2),
    "Q4_0": (32, 18), "Q4_1": (32, 20), "Q5_0": (32, 22), "Q5_1": (32, 24), "Q8_0": (32, 34),
    "Q2_K": (256, 84), "Q3_K": (256, 110), "Q4_K": (256, 144), "Q5_K": (256, 176), "Q6_K": (256, 210),
}


def half(col):  # (n, 2) uint8 -> (n, 1) float32, exact
    return np.ascontiguousarray(col).view("<f2").astype(f32)


def bits(byte_cols, count):
    """(n, count/8) uint8 -> (n, count) 0/1, bit i of the little-endian bit string."""
    return np.unpackbits(byte_cols, axis=1, bitorder="little")[:, :count].astype(np.int32)


def nibbles_split(qs):  # (n, 16) -> (n, 32): element j = low nibble of qs[j], j + 16 = high nibble
    return np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.int32)


def q4_0(b):
    d = half(b[:, 0:2])
    q = nibbles_split(b[:, 2:18]) - 8
    return q.astype(f32) * d


def q8_0(b):
    d = half(b[:, 0:2])
    return b[:, 2:34].view(np.int8).astype(f32) * d


def q4_1(b):
    d, m = half(b[:, 0:2]), half(b[:, 2:4])
    q = nibbles_split(b[:, 4:20])
    return q.astype(f32) * d + m


def q5_0(b):
    d = half(b[:, 0:2])
    q = nibbles_split(b[:, 6:22]) | (bits(b[:, 2:6], 32) << 4)
    return (q - 16).astype(f32) * d


def q5_1(b):
    d, m = half(b[:, 0:2]), half(b[:, 2:4])
    q = nibbles_split(b[:, 8:24]) | (bits(b[:, 4:8], 32) << 4)
    return q.astype(f32) * d + m


def crumbs_k(qs):
    """K-quant 2-bit planes: (n, 64) -> (n, 256). Value 128*h + 32*s + l (l < 32) is bits
    2s..2s+1 of qs[32*h + l]."""
    n = qs.shape[0]
    q = qs.reshape(n, 2, 1, 32) >> (np.arange(4, dtype=np.uint8).reshape(1, 1, 4, 1) * 2)
    return (q & 3).reshape(n, 256).astype(np.int32)


def q2_k(b):
    n = b.shape[0]
    scales, qs = b[:, 0:16], b[:, 16:80]
    d, dmin = half(b[:, 80:82]), half(b[:, 82:84])
    dl = (d * (scales & 0xF).astype(f32)).reshape(n, 16, 1)  # one scale per 16 values
    ml = (dmin * (scales >> 4).astype(f32)).reshape(n, 16, 1)
    q = crumbs_k(qs).reshape(n, 16, 16).astype(f32)
    return (dl * q - ml).reshape(n, 256)


def q3_k(b):
    n = b.shape[0]
    hmask, qs, packed = b[:, 0:32], b[:, 32:96], b[:, 96:108]
    d = half(b[:, 108:110])
    # 6-bit scale j: low 4 bits from packed[j % 8] (low nibble for j < 8, high for j >= 8),
    # high 2 bits from packed[8 + j % 4] at bit 2 * (j // 4).
    j = np.arange(16)
    low = np.where(j < 8, packed[:, j % 8] & 0xF, packed[:, j % 8] >> 4).astype(np.int32)
    high = ((packed[:, 8 + j % 4] >> (2 * (j // 4)).astype(np.uint8)) & 3).astype(np.int32)
    sc = (low | (high << 4)) - 32
    dl = (d * sc.astype(f32)).reshape(n, 16, 1)
    # The high bit of value 32*s' + l (s' = 0..7 over the whole block) is bit s' of hmask[l].
    hb = np.unpackbits(hmask, axis=1, bitorder="little").reshape(n, 32, 8).transpose(0, 2, 1).reshape(n, 256)
    q = crumbs_k(qs) - np.where(hb != 0, 0, 4)
    return (dl * q.reshape(n, 16, 16).astype(f32)).reshape(n, 256)


def scale_min_k4(s):
    """Q4_K/Q5_K packed 6-bit scales and mins: (n, 12) -> two (n, 8) int arrays."""
    s = s.astype(np.int32)
    sc = np.empty((s.shape[0], 8), np.int32)
    mn = np.empty_like(sc)
    sc[:, :4] = s[:, 0:4] & 63
    mn[:, :4] = s[:, 4:8] & 63
    sc[:, 4:] = (s[:, 8:12] & 0xF) | ((s[:, 0:4] >> 6) << 4)
    mn[:, 4:] = (s[:, 8:12] >> 4) | ((s[:, 4:8] >> 6) << 4)
    return sc, mn


def nibbles_k(qs):
    """(n, 128) -> (n, 256): value 64*c + l is the low nibble of qs[32c + l] for l < 32, the
    high nibble of qs[32c + l - 32] for 32 <= l < 64."""
    n = qs.shape[0]
    q = qs.reshape(n, 4, 1, 32) >> np.array([0, 4], np.uint8).reshape(1, 1, 2, 1)
    return (q & 0xF).reshape(n, 256).astype(np.int32)


def q4_k(b):
    n = b.shape[0]
    d, dmin = half(b[:, 0:2]), half(b[:, 2:4])
    sc, mn = scale_min_k4(b[:, 4:16])
    dl = (d * sc.astype(f32)).reshape(n, 8, 1)
    ml = (dmin * mn.astype(f32)).reshape(n, 8, 1)
    q = nibbles_k(b[:, 16:144]).reshape(n, 8, 32).astype(f32)
    return (dl * q - ml).reshape(n, 256)


def q5_k(b):
    n = b.shape[0]
    d, dmin = half(b[:, 0:2]), half(b[:, 2:4])
    sc, mn = scale_min_k4(b[:, 4:16])
    # Group g (32 values) takes its fifth bit from bit g of qh[l].
    hb = np.unpackbits(b[:, 16:48], axis=1, bitorder="little").reshape(n, 32, 8).transpose(0, 2, 1).reshape(n, 256)
    q = nibbles_k(b[:, 48:176]) + 16 * hb.astype(np.int32)
    dl = (d * sc.astype(f32)).reshape(n, 8, 1)
    ml = (dmin * mn.astype(f32)).reshape(n, 8, 1)
    return (dl * q.reshape(n, 8, 32).astype(f32) - ml).reshape(n, 256)


def q6_k(b):
    n = b.shape[0]
    ql, qh = b[:, 0:128], b[:, 128:192]
    sc = b[:, 192:208].view(np.int8).astype(f32)
    d = half(b[:, 208:210])
    # Half h (128 values), quarter c: low 4 bits from ql[64h + 32*(c % 2) + l] (low nibble for
    # c < 2, high for c >= 2), high 2 bits from bits 2c..2c+1 of qh[32h + l].
    out = np.empty((n, 256), f32)
    for h in range(2):
        lo = ql[:, 64 * h:64 * h + 64].reshape(n, 2, 32)
        hi = qh[:, 32 * h:32 * h + 32]
        for c in range(4):
            low = (lo[:, c % 2] >> (4 * (c // 2))) & 0xF
            q = (low.astype(np.int32) | (((hi >> (2 * c)) & 3).astype(np.int32) << 4)) - 32
            # scale index: 8h + 2c + (l // 16)
            s = np.repeat(sc[:, 8 * h + 2 * c:8 * h + 2 * c + 2], 16, axis=1)
            out[:, 128 * h + 32 * c:128 * h + 32 * c + 32] = (d * s) * q.astype(f32)
    return out


def f16(b):
    return b.reshape(-1).view("<f2").astype(f32).reshape(-1, 1)


def bf16(b):
    return (b.reshape(-1).view("<u2").astype(np.uint32) << 16).view(f32).reshape(-1, 1)


def f32_(b):
    return b.reshape(-1).view("<f4").reshape(-1, 1).copy()


DEQUANT = {"F32": f32_, "F16": f16, "BF16": bf16, "Q4_0": q4_0, "Q4_1": q4_1, "Q5_0": q5_0, "Q5_1": q5_1,
           "Q8_0": q8_0, "Q2_K": q2_k, "Q3_K": q3_k, "Q4_K": q4_k, "Q5_K": q5_k, "Q6_K": q6_k}


def dequantize(type_name, raw, n_values):
    block, size = SIZES[type_name]
    assert n_values % block == 0, (type_name, n_values)
    blocks = np.frombuffer(raw, dtype=np.uint8)[: n_values // block * size].reshape(-1, size)
    with np.errstate(all="ignore"):  # random blocks may hold inf/NaN scales
        return DEQUANT[type_name](blocks).reshape(-1).astype(f32, copy=False)


def main():
    d, pairs = sys.argv[1], sys.argv[2:]
    for type_name, n in zip(pairs[0::2], pairs[1::2]):
        with open(f"{d}/{type_name}.bin", "rb") as f:
            raw = f.read()
        dequantize(type_name, raw, int(n)).tofile(f"{d}/{type_name}.f32")


if __name__ == "__main__":
    main()
