"""Independent packing reference (torch / numpy), written from the published packers:
compressed-tensors pack_to_int32 (signed codes + 2^(b-1), shift-and-sum into int32 along the
last dim, zero-padded; zero points packed along dim 0), AutoGPTQ QuantLinear.pack (qweight
[K*b/32, N] packed along K, qzeros [G, N*b/32] storing zero - 1 in the v1 format, scales f16
[G, N]), AutoAWQ WQLinear_GEMM.from_linear (qweight [K, N/8] and qzeros [G, N/8] packed along N
in the order [0, 2, 4, 6, 1, 3, 5, 7], scales f16 [G, N]).

usage: packing_ref.py DIR   (for each DIR/case_I: meta.txt "n k bits group", codes.u8 [N,K],
zeros.u8 [N,G], scales.f32 [N,G])
"""
import sys

import numpy as np
import torch


def ct_pack(signed, bits):  # signed int8 [rows, cols] -> int32 [rows, ceil(cols / f)]
    f = 32 // bits
    v = (signed.to(torch.int32) + (1 << (bits - 1)))
    rows, cols = v.shape
    pad = (-cols) % f
    v = torch.nn.functional.pad(v, (0, pad)).view(rows, -1, f)
    shifts = torch.arange(f, dtype=torch.int32) * bits
    return (v << shifts).sum(dim=2, dtype=torch.int32)


def gptq_pack(codes, zeros, bits, v1):  # codes [N, K] (uint), zeros [N, G]
    f = 32 // bits
    intweight = codes.T.astype(np.uint32)  # [K, N]
    qweight = np.zeros((intweight.shape[0] // f, intweight.shape[1]), dtype=np.uint32)
    for row in range(qweight.shape[0]):
        for j in range(f):
            qweight[row] |= intweight[row * f + j] << np.uint32(bits * j)
    z = zeros.T.astype(np.int64) - (1 if v1 else 0)  # [G, N]
    z = (z & ((1 << bits) - 1)).astype(np.uint32)
    qzeros = np.zeros((z.shape[0], z.shape[1] // f), dtype=np.uint32)
    for col in range(qzeros.shape[1]):
        for j in range(f):
            qzeros[:, col] |= z[:, col * f + j] << np.uint32(bits * j)
    return qweight.view(np.int32), qzeros.view(np.int32)


def awq_pack(codes, zeros):
    order = [0, 2, 4, 6, 1, 3, 5, 7]
    intweight = codes.T.astype(np.uint32)  # [K, N]
    qweight = np.zeros((intweight.shape[0], intweight.shape[1] // 8), dtype=np.uint32)
    for col in range(qweight.shape[1]):
        for i in range(8):
            qweight[:, col] |= intweight[:, col * 8 + order[i]] << np.uint32(4 * i)
    z = zeros.T.astype(np.uint32)  # [G, N]
    qzeros = np.zeros((z.shape[0], z.shape[1] // 8), dtype=np.uint32)
    for col in range(qzeros.shape[1]):
        for i in range(8):
            qzeros[:, col] |= z[:, col * 8 + order[i]] << np.uint32(4 * i)
    return qweight.view(np.int32), qzeros.view(np.int32)


def run_case(d):
    n, k, bits, group = (int(v) for v in open(f"{d}/meta.txt").read().split())
    g = k // group
    codes = np.fromfile(f"{d}/codes.u8", dtype=np.uint8).reshape(n, k)
    zeros = np.fromfile(f"{d}/zeros.u8", dtype=np.uint8).reshape(n, g)
    scales = np.fromfile(f"{d}/scales.f32", dtype=np.float32).reshape(n, g)
    mid = 1 << (bits - 1)
    signed = torch.from_numpy(codes.astype(np.int16) - mid).to(torch.int8)
    ct_pack(signed, bits).numpy().tofile(f"{d}/ct_packed.i32")
    zsigned = torch.from_numpy(zeros.astype(np.int16) - mid).to(torch.int8)
    ct_pack(zsigned.T.contiguous(), bits).T.contiguous().numpy().tofile(f"{d}/ct_zp.i32")
    scales.T.astype(np.float16).tofile(f"{d}/f16_scales.f16")
    if bits in (2, 4, 8) and k % (32 // bits) == 0 and n % (32 // bits) == 0:
        for fmt, v1 in (("v1", True), ("v2", False)):
            qw, qz = gptq_pack(codes, zeros, bits, v1)
            qw.tofile(f"{d}/gptq_qweight.i32")
            qz.tofile(f"{d}/gptq_qzeros_{fmt}.i32")
    if bits == 4 and n % 8 == 0:
        qw, qz = awq_pack(codes, zeros)
        qw.tofile(f"{d}/awq_qweight.i32")
        qz.tofile(f"{d}/awq_qzeros.i32")


def main():
    import os
    root = sys.argv[1]
    for name in sorted(os.listdir(root)):
        if name.startswith("case_"):
            run_case(os.path.join(root, name))


if __name__ == "__main__":
    main()
