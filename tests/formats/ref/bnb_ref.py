"""Independent bitsandbytes 4-bit reference (numpy, torch only to evaluate bitsandbytes' own
create_dynamic_map formula), written from bitsandbytes' definitions:
  functional.get_4bit_type (codebooks), quantize_4bit (blocks of 64 over the flattened
  tensor, f32 absmax, compress_statistics: absmax - mean quantized blockwise (256) with the
  signed dynamic map), kernels.cu dQuantizeNF4 / dQuantizeFP4 (threshold constants, strict >),
  dQuantize (nearest code by f32 midpoint; exactly on a midpoint the even index wins, which is
  where the 7-step search from index 127 always ends), packing: first element high nibble.

usage: bnb_ref.py DIR   (DIR/cases.txt: lines "n k"; DIR/matrix_I.f32 per case)
"""
import sys
from fractions import Fraction

import numpy as np
import torch

NF4 = [-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
       -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
       0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
       0.7229568362236023, 1.0]
# dQuantizeNF4's constants (ascending).
NF4_T = [-0.8480964004993439, -0.6106329262256622, -0.4599952697753906, -0.33967943489551544,
         -0.23460740596055984, -0.13791173323988914, -0.045525018125772476, 0.03979014977812767,
         0.1202552504837513, 0.2035212516784668, 0.2920137718319893, 0.3893125355243683,
         0.5016634166240692, 0.6427869200706482, 0.8614784181118011]
FP4 = [0, 0.0625, 8.0, 12.0, 4.0, 6.0, 2.0, 3.0, -0.0, -0.0625, -8.0, -12.0, -4.0, -6.0, -2.0, -3.0]
# dQuantizeFP4's magnitude constants (ascending) and the code reached past each count of them.
FP4_T = [0.00260417, 0.0859375, 0.20833333, 0.29166667, 0.4166667, 0.583333, 0.8333333]
FP4_RANK_CODE = [0b000, 0b001, 0b110, 0b111, 0b100, 0b101, 0b010, 0b011]

f32 = np.float32


def nf4_codes(x):
    t = np.array(NF4_T, dtype=f32)
    return (x[:, None] > t[None, :]).sum(axis=1).astype(np.uint8)


def fp4_codes(x):
    t = np.array(FP4_T, dtype=f32)
    rank = (np.abs(x)[:, None] > t[None, :]).sum(axis=1)
    return (np.array(FP4_RANK_CODE, dtype=np.uint8)[rank] | np.where(x < 0, 8, 0).astype(np.uint8)).astype(np.uint8)


def round_f32(q: Fraction) -> float:
    """Exactly rounded (nearest even) f32 of a positive rational."""
    e = q.numerator.bit_length() - q.denominator.bit_length()
    while Fraction(2) ** e > q:
        e -= 1
    while Fraction(2) ** (e + 1) <= q:
        e += 1
    scaled = q / Fraction(2) ** (e - 23)  # in [2^23, 2^24)
    i = int(scaled)
    rem = scaled - i
    if rem > Fraction(1, 2) or (rem == Fraction(1, 2) and i % 2 == 1):
        i += 1
    return float(f32(i * 2.0 ** (e - 23)))


def dynamic_map_exact():
    data = []
    for i in range(7):
        n = 2**i + 1
        b = [Fraction(1, 10) + Fraction(9, 10) * Fraction(k, n - 1) for k in range(n)]
        for k in range(n - 1):
            v = round_f32((b[k] + b[k + 1]) / 2 * Fraction(10) ** (i - 6))
            data += [v, -v]
    data += [0.0, 1.0]
    return np.array(sorted(data), dtype=f32)


def dynamic_map_torch():
    """bitsandbytes' create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8)."""
    data = []
    for i in range(7):
        boundaries = torch.linspace(0.1, 1, 2**i + 1)
        means = (boundaries[:-1] + boundaries[1:]) / 2.0
        data += ((10 ** (-6 + i)) * means).tolist()
        data += (-(10 ** (-6 + i)) * means).tolist()
    data += [0, 1.0]
    return np.array(sorted(data), dtype=f32)


def dynamic_codes(x, code):
    hi = np.clip(np.searchsorted(code, x, side="left"), 1, 255)  # code[hi-1] < x <= code[hi]
    lo = hi - 1
    mid = ((code[lo] + code[hi]) * f32(0.5)).astype(f32)
    even = np.where(lo % 2 == 0, lo, hi)
    out = np.where(x > mid, hi, np.where(x < mid, lo, even))
    out = np.where(x <= code[0], 0, out)
    return np.where(np.isnan(x), 0, out).astype(np.uint8)


def blockwise(x, blocksize, quant):
    n = len(x)
    nb = (n + blocksize - 1) // blocksize
    absmax = np.zeros(nb, dtype=f32)
    codes = np.zeros(n, dtype=np.uint8)
    with np.errstate(divide="ignore", invalid="ignore"):
        for b in range(nb):
            blk = x[b * blocksize:(b + 1) * blocksize]
            absmax[b] = np.max(np.abs(blk))
            inv = f32(1.0) / absmax[b]
            codes[b * blocksize:(b + 1) * blocksize] = quant((blk * inv).astype(f32))
    return codes, absmax


def main():
    d = sys.argv[1]
    exact = dynamic_map_exact()
    exact.tofile(f"{d}/map_exact.f32")
    dynamic_map_torch().tofile(f"{d}/map_torch.f32")
    np.array(NF4, dtype=f32).tofile(f"{d}/nf4_book.f32")
    fp4_book = (np.array(FP4, dtype=f32) / f32(12.0)).astype(f32)
    fp4_book.tofile(f"{d}/fp4_book.f32")
    probe = np.fromfile(f"{d}/probe.f32", dtype=f32)
    dynamic_codes(probe, exact).tofile(f"{d}/probe_dynamic.u8")
    nf4_codes(probe).tofile(f"{d}/probe_nf4.u8")
    fp4_codes(probe).tofile(f"{d}/probe_fp4.u8")
    cases = [tuple(int(v) for v in l.split()) for l in open(f"{d}/cases.txt").read().splitlines() if l.strip()]
    for ci, (n, k) in enumerate(cases):
        x = np.fromfile(f"{d}/matrix_{ci}.f32", dtype=f32)
        assert x.size == n * k
        for name, quant, book in (("nf4", nf4_codes, np.array(NF4, dtype=f32)), ("fp4", fp4_codes, fp4_book)):
            codes, absmax = blockwise(x, 64, quant)
            if len(codes) % 2:
                with np.errstate(invalid="ignore"):
                    pad = quant(np.array([f32(0.0) * (f32(1.0) / absmax[-1])], dtype=f32))
                codes = np.concatenate([codes, pad])
            packed = ((codes[0::2] << 4) | codes[1::2]).astype(np.uint8)
            packed.tofile(f"{d}/{name}_{ci}_packed.u8")
            absmax.tofile(f"{d}/{name}_{ci}_absmax.f32")
            deq = (book[codes[:n * k]] * np.repeat(absmax, 64)[:n * k]).astype(f32)
            deq.tofile(f"{d}/{name}_{ci}_deq.f32")
            # Double quantization of the absmax.
            offset = f32(np.mean(absmax.astype(np.float64)))
            centered = (absmax - offset).astype(f32)
            c2, a2 = blockwise(centered, 256, lambda v: dynamic_codes(v, exact))
            np.array([offset], dtype=f32).tofile(f"{d}/{name}_{ci}_offset.f32")
            c2.tofile(f"{d}/{name}_{ci}_codes2.u8")
            a2.tofile(f"{d}/{name}_{ci}_absmax2.f32")
            absmax_hat = ((exact[c2] * np.repeat(a2, 256)[:len(c2)]).astype(f32) + offset).astype(f32)
            deq2 = (book[codes[:n * k]] * np.repeat(absmax_hat, 64)[:n * k]).astype(f32)
            deq2.tofile(f"{d}/{name}_{ci}_deq2.f32")


if __name__ == "__main__":
    main()
