"""Independent GPTQ reference in PyTorch, written from the algorithm as AutoGPTQ runs it
(GPTQ.add_batch, GPTQ.fasterquant, Quantizer.find_params / quantize), column by column with
torch tensor operations.

Deliberate differences from AutoGPTQ: mean(diag H) for the damping is taken in float64 (see
below), and the symmetric range is [-amax, amax] for every group (compressed-tensors,
formats/int_quant.h), where AutoGPTQ's Quantizer keeps xmin = 0 for a group without negative
values. MSE clip search (Quantizer(mse=True)): p = 1 - i / grid for
i < int(maxshrink * grid), error sum |x - q|^norm (float64 here), first best kept.

usage: gptq_ref.py DIR
  DIR/cases.txt, one line per case:
    n k bits sym(0/1) gran(group|channel|tensor) group act(0/1) static(0/1) damp block mse(none|gptq)
    scale_dtype(f32|f16)
  DIR/w_I.f32 [n, k], DIR/h_I.f32 [k, k] for case I (0-based)
  optional DIR/hessian.txt: "k batches" and DIR/hx_B.f32 [rows_B, k], DIR/hx_rows.txt
    (rows per batch, samples per batch): writes DIR/href.f32 by add_batch.
writes DIR/codes_I.u8 [n, k], scales_I.f32, zeros_I.u8, gidx_I.i32, q_I.f32 (dequantized,
original column order), loss_I.txt
"""
import math
import os
import sys

# One OpenBLAS thread: its threaded Cholesky rounds differently with each thread count, and
# qstudy's GPTQ factorizes on one thread by default.
os.environ["OPENBLAS_NUM_THREADS"] = "1"

import numpy as np  # noqa: E402
import torch  # noqa: E402

MSE = {"none": None, "gptq": (100, 0.8, 2.4)}


class Quantizer:
    def __init__(self, bits, sym, mse, f16):
        self.maxq = 2**bits - 1
        self.sym = sym
        self.mse = mse
        self.f16 = f16

    def params(self, x, p):
        """Scale and zero of each row of x for clip ratio p."""
        zeros = torch.zeros(x.shape[0])
        xmin = torch.minimum(x.min(1)[0], zeros)
        xmax = torch.maximum(x.max(1)[0], zeros)
        if self.sym:
            xmax = torch.maximum(torch.abs(xmin), xmax)
            xmin = -xmax
        both = (xmin == 0) & (xmax == 0)
        xmin = torch.where(both, torch.full_like(xmin, -1.0), xmin) * p
        xmax = torch.where(both, torch.full_like(xmax, 1.0), xmax) * p
        scale = (xmax - xmin) / self.maxq
        if self.sym:
            zero = torch.full_like(scale, (self.maxq + 1) / 2)
        else:
            zero = torch.round(-xmin / scale)
        if self.f16:  # stored as f16; codes use the stored scale, the zero comes from the f32 one
            scale = scale.half().float()
            scale = torch.where(scale > 0, scale, torch.full_like(scale, 2.0**-24))
        return scale, zero

    def find_params(self, x):
        if self.mse is None:
            self.scale, self.zero = self.params(x, 1.0)
            return
        grid, maxshrink, norm = self.mse
        best = torch.full((x.shape[0],), float("inf"), dtype=torch.float64)
        self.scale = torch.zeros(x.shape[0])
        self.zero = torch.zeros(x.shape[0])
        for i in range(int(maxshrink * grid)):
            s, z = self.params(x, 1 - i / grid)
            _, q = self.quantize_with(x, s[:, None], z[:, None])
            err = (x.double() - q.double()).abs().pow(norm).sum(1)
            better = err < best
            best = torch.where(better, err, best)
            self.scale = torch.where(better, s, self.scale)
            self.zero = torch.where(better, z, self.zero)

    def quantize_with(self, x, scale, zero):
        codes = torch.clamp(torch.round(x / scale) + zero, 0, self.maxq)
        return codes, scale * (codes - zero)

    def quantize(self, x):  # x [rows]
        return self.quantize_with(x, self.scale, self.zero)


def fasterquant(W, H, bits, sym, gran, group, act, static, damp, block, mse, f16):
    W = W.clone()
    H = H.clone()
    n, k = W.shape
    quantizer = Quantizer(bits, sym, mse, f16)
    if gran == "channel":
        quantizer.find_params(W)
    elif gran == "tensor":
        quantizer.find_params(W.reshape(1, -1))
        quantizer.scale = quantizer.scale.expand(n).clone()
        quantizer.zero = quantizer.zero.expand(n).clone()
    groupsize = group if gran == "group" else -1

    dead = torch.diag(H) == 0
    H[dead, dead] = 1
    W[:, dead] = 0

    static_q = []
    if static:
        for i in range(0, k, groupsize):
            q = Quantizer(bits, sym, mse, f16)
            q.find_params(W[:, i : i + groupsize])
            static_q.append(q)

    if act:
        perm = torch.argsort(torch.diag(H), descending=True)
        W = W[:, perm]
        H = H[perm][:, perm]
        invperm = torch.argsort(perm)

    Losses = torch.zeros_like(W)
    Q = torch.zeros_like(W)
    C = torch.zeros_like(W)  # codes
    scales, zeros = [], []

    # mean(diag H) in float64, rounded: torch's float32 mean depends on its reduction order
    # (it moves with the act-order permutation) and can be 1 ulp off the exact mean; with the
    # same damping both sides compute bit for bit the same thing.
    d = damp * torch.mean(torch.diag(H).double()).float()
    idx = torch.arange(k)
    H[idx, idx] += d
    H = torch.linalg.cholesky(H)
    H = torch.cholesky_inverse(H)
    H = torch.linalg.cholesky(H, upper=True)
    Hinv = H

    for i1 in range(0, k, block):
        i2 = min(i1 + block, k)
        count = i2 - i1
        W1 = W[:, i1:i2].clone()
        Q1 = torch.zeros_like(W1)
        C1 = torch.zeros_like(W1)
        Err1 = torch.zeros_like(W1)
        Losses1 = torch.zeros_like(W1)
        Hinv1 = Hinv[i1:i2, i1:i2]
        for i in range(count):
            w = W1[:, i]
            dd = Hinv1[i, i]
            if groupsize != -1:
                if not static:
                    if (i1 + i) % groupsize == 0:
                        # W, not W1: this batch's columns as of the batch start
                        quantizer.find_params(W[:, (i1 + i) : (i1 + i + groupsize)])
                        scales.append(quantizer.scale)
                        zeros.append(quantizer.zero)
                else:
                    col = i1 + i
                    if act:
                        col = perm[col].item()
                    quantizer = static_q[col // groupsize]
            c, q = quantizer.quantize(w)
            Q1[:, i] = q
            C1[:, i] = c
            Losses1[:, i] = (w - q) ** 2 / dd**2
            err1 = (w - q) / dd
            W1[:, i:] -= err1.unsqueeze(1).matmul(Hinv1[i, i:].unsqueeze(0))
            Err1[:, i] = err1
        Q[:, i1:i2] = Q1
        C[:, i1:i2] = C1
        Losses[:, i1:i2] = Losses1 / 2
        W[:, i2:] -= Err1.matmul(Hinv[i1:i2, i2:])

    if static:
        scales = [q.scale for q in static_q]
        zeros = [q.zero for q in static_q]
    elif groupsize == -1:
        scales = [quantizer.scale]
        zeros = [quantizer.zero]
    g = groupsize if groupsize != -1 else k
    if static and act:
        g_idx = torch.tensor([perm[i].item() // g for i in range(k)], dtype=torch.int32)
    else:
        g_idx = torch.tensor([i // g for i in range(k)], dtype=torch.int32)
    if act:
        Q = Q[:, invperm]
        C = C[:, invperm]
        g_idx = g_idx[invperm]
    scale = torch.stack(scales, dim=1)
    zero = torch.stack(zeros, dim=1)
    if gran == "tensor":
        scale, zero = scale[:1, :1], zero[:1, :1]
    return C, Q, scale, zero, g_idx, torch.sum(Losses).item()


def hessian(d):
    k, batches = (int(v) for v in open(f"{d}/hessian.txt").read().split())
    sizes = [tuple(int(v) for v in line.split()) for line in open(f"{d}/hx_rows.txt").read().splitlines() if line.strip()]
    H = torch.zeros((k, k))
    nsamples = 0
    for b in range(batches):
        rows, samples = sizes[b]
        inp = torch.from_numpy(np.fromfile(f"{d}/hx_{b}.f32", dtype=np.float32)).reshape(rows, k).t()
        H *= nsamples / (nsamples + samples)
        nsamples += samples
        inp = math.sqrt(2 / nsamples) * inp.float()
        H += inp.matmul(inp.t())
    H.numpy().tofile(f"{d}/href.f32")


def main():
    d = sys.argv[1]
    torch.set_num_threads(1)
    if os.path.exists(f"{d}/hessian.txt"):
        hessian(d)
    if not os.path.exists(f"{d}/cases.txt"):
        return
    for i, line in enumerate(l for l in open(f"{d}/cases.txt").read().splitlines() if l.strip()):
        n, k, bits, sym, gran, group, act, static, damp, block, mse, sdt = line.split()
        n, k = int(n), int(k)
        W = torch.from_numpy(np.fromfile(f"{d}/w_{i}.f32", dtype=np.float32)).reshape(n, k)
        H = torch.from_numpy(np.fromfile(f"{d}/h_{i}.f32", dtype=np.float32)).reshape(k, k)
        C, Q, scale, zero, g_idx, loss = fasterquant(
            W, H, int(bits), sym == "1", gran, int(group), act == "1", static == "1", float(damp), int(block), MSE[mse],
            sdt == "f16",
        )
        C.to(torch.uint8).numpy().tofile(f"{d}/codes_{i}.u8")
        Q.numpy().tofile(f"{d}/q_{i}.f32")
        scale.contiguous().numpy().tofile(f"{d}/scales_{i}.f32")
        zero.contiguous().to(torch.uint8).numpy().tofile(f"{d}/zeros_{i}.u8")
        g_idx.numpy().tofile(f"{d}/gidx_{i}.i32")
        open(f"{d}/loss_{i}.txt", "w").write(repr(loss))


if __name__ == "__main__":
    main()
