"""Independent integer-quantization reference in PyTorch (torch.round = half to even).

Follows GPTQ's Quantizer (find_params / quantize) and compressed-tensors' calculate_qparams:
  range [min(x.min, 0), max(x.max, 0)], an all-zero group gets [-1, 1];
  symmetric full:       scale = amax / ((2^b - 1) / 2), zero = 2^(b-1)
  symmetric restricted: scale = amax / (2^(b-1) - 1),   zero = 2^(b-1), codes >= 1
  asymmetric:           scale = (max - min) / (2^b - 1), zero = round(clamp(-min / scale))
  scale rounded to the storage dtype after the zero point; q = clamp(round(x / s) + z).
MSE search: p = 1 - i / grid, i < int(maxshrink * grid); error sum |x - x_hat|^norm (float64);
best kept on strict improvement; patience counts steps in which no group improved.

usage: int_quant_ref.py DIR   (DIR/matrix.f32, DIR/shape.txt, DIR/configs.txt; one line per
config: bits sym(0/1) granularity(tensor|channel|group) group_size range(full|restricted)
scale_dtype(f32|f16|bf16) mse(none|default|gptq|llmc))
"""
import sys

import torch

MSE = {"default": (200, 0.5, 2.0, 0), "gptq": (100, 0.8, 2.4, 0), "llmc": (100, 0.2, 2.4, 5)}
DTYPES = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}


def params(xmin, xmax, bits, sym, restricted, sdt, p):
    xmin = torch.minimum(xmin, torch.zeros_like(xmin))
    xmax = torch.maximum(xmax, torch.zeros_like(xmax))
    both_zero = (xmin == 0) & (xmax == 0)
    xmin = torch.where(both_zero, torch.full_like(xmin, -1.0), xmin) * p
    xmax = torch.where(both_zero, torch.full_like(xmax, 1.0), xmax) * p
    maxq = 2**bits - 1
    if sym:
        amax = torch.maximum(-xmin, xmax)
        scale = amax / ((2 ** (bits - 1) - 1) if restricted else maxq / 2)
        zero = torch.full_like(scale, 2 ** (bits - 1))
    else:
        scale = (xmax - xmin) / maxq
        zero = torch.round(torch.clamp(-xmin / scale, 0, maxq))
    if sdt != "f32":
        dt = DTYPES[sdt]
        scale = scale.to(dt).to(torch.float32)
        tiny = torch.tensor(2.0**-24 if sdt == "f16" else 2.0**-133, dtype=dt).to(torch.float32)
        scale = torch.where(scale > 0, scale, tiny)
    return scale, zero


def quantize(x, scale, zero, bits, sym, restricted):
    qmin = 1 if (sym and restricted) else 0
    return torch.clamp(torch.round(x / scale[:, None]) + zero[:, None], qmin, 2**bits - 1)


def run(w, bits, sym, gran, group, rng, sdt, mse):
    n, k = w.shape
    if gran == "tensor":
        groups = w.reshape(1, -1)
    elif gran == "channel":
        groups = w
    else:
        groups = w.reshape(-1, group)
    restricted = rng == "restricted"
    xmin, xmax = groups.min(dim=1).values, groups.max(dim=1).values
    if mse == "none":
        scale, zero = params(xmin, xmax, bits, sym, restricted, sdt, 1.0)
    else:
        grid, maxshrink, norm, patience = MSE[mse]
        best = torch.full((groups.shape[0],), float("inf"), dtype=torch.float64)
        scale = torch.zeros(groups.shape[0])
        zero = torch.zeros(groups.shape[0])
        stale = 0
        for i in range(int(maxshrink * grid)):
            p = 1 - i / grid
            s, z = params(xmin, xmax, bits, sym, restricted, sdt, p)
            q = quantize(groups, s, z, bits, sym, restricted)
            x_hat = (q - z[:, None]) * s[:, None]
            err = (groups.double() - x_hat.double()).abs().pow(norm).sum(dim=1)
            better = err < best
            best = torch.where(better, err, best)
            scale = torch.where(better, s, scale)
            zero = torch.where(better, z, zero)
            stale = 0 if bool(better.any()) else stale + 1
            if patience and stale >= patience:
                break
    codes = quantize(groups, scale, zero, bits, sym, restricted)
    return codes.reshape(n, k).to(torch.uint8), scale, zero.to(torch.uint8)


def main():
    d = sys.argv[1]
    n, k = (int(v) for v in open(f"{d}/shape.txt").read().split())
    w = torch.from_numpy(__import__("numpy").fromfile(f"{d}/matrix.f32", dtype="float32")).reshape(n, k)
    for i, line in enumerate(l for l in open(f"{d}/configs.txt").read().splitlines() if l.strip()):
        bits, sym, gran, group, rng, sdt, mse = line.split()
        codes, scale, zero = run(w, int(bits), sym == "1", gran, int(group), rng, sdt, mse)
        codes.numpy().tofile(f"{d}/codes_{i}.u8")
        scale.to(torch.float32).numpy().tofile(f"{d}/scales_{i}.f32")
        zero.numpy().tofile(f"{d}/zeros_{i}.u8")


if __name__ == "__main__":
    main()
