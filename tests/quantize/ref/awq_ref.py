"""Independent AWQ reference in PyTorch, written from AutoAWQ's AwqQuantizer logic
(_search_best_scale, _compute_best_scale, _compute_best_clip) with f32 tensors.

The quantizer is qstudy's integer rule (formats/int_quant.h; GPTQ / compressed-tensors):
range [min(min, 0), max(max, 0)] per group (an all-zero group [-1, 1]); asymmetric
scale = (max - min) / (2^b - 1), zero = round(-min / scale); symmetric
scale = amax / ((2^b - 1) / 2), zero = 2^(b-1); codes clamp(round(w / s) + z, 0, 2^b - 1).

usage: awq_ref.py DIR
  DIR/config.txt: "rows k bits sym group n_grid duo n_linears" then one line per linear: "n"
  DIR/x.f32 [rows, k], DIR/w_L.f32 [n_L, k]
  DIR/x_scale.f32, DIR/w_scale.f32: the statistics the search uses (qstudy's, so that both
    sides search from identical inputs); DIR/candidates.f32 [n_grid, k]: qstudy's candidate scales
  optional DIR/clip.txt: "n_grid max_shrink n_sample_tokens": clip search of linear 0
writes DIR/x_scale_ref.f32, w_scale_ref.f32 (statistics computed here), losses_ref.f64,
best_ref.txt (best index), scales_ref.f32 (best scales), candidates_ref.f32 [n_grid, k] (the
scales of every ratio), losses_of_candidates.f64 (the loss of each of qstudy's candidates),
max_val_ref.f32 [n_0, groups]
"""
import os
import sys

os.environ["OPENBLAS_NUM_THREADS"] = "1"

import numpy as np  # noqa: E402
import torch  # noqa: E402


def load(path, shape):
    return torch.from_numpy(np.fromfile(path, dtype=np.float32)).reshape(shape)


def pseudo_quantize(w, bits, sym, group):
    shape = w.shape
    w = w.reshape(-1, group)
    maxq = 2**bits - 1
    zeros = torch.zeros(w.shape[0], 1)
    xmin = torch.minimum(w.amin(dim=1, keepdim=True), zeros)
    xmax = torch.maximum(w.amax(dim=1, keepdim=True), zeros)
    both = (xmin == 0) & (xmax == 0)
    xmin = torch.where(both, torch.full_like(xmin, -1.0), xmin)
    xmax = torch.where(both, torch.full_like(xmax, 1.0), xmax)
    if sym:
        amax = torch.maximum(-xmin, xmax)
        scale = amax / (maxq / 2)
        zero = torch.full_like(scale, 2 ** (bits - 1))
    else:
        scale = (xmax - xmin) / maxq
        zero = torch.round(torch.clamp(-xmin / scale, 0, maxq))
    q = torch.clamp(torch.round(w / scale) + zero, 0, maxq)
    return ((q - zero) * scale).reshape(shape)


def statistics(x, ws, group):
    # AutoAWQ: w_scale = |w| / (group absmax + 1e-6), mean over rows; x_mean = sum |x| / rows
    weight = torch.cat(ws, dim=0)
    shape = weight.shape
    weight = weight.reshape(-1, group)
    w_scale = weight.abs() / (weight.abs().amax(dim=1, keepdim=True) + 1e-6)
    w_mean = w_scale.reshape(shape).mean(0)
    x_mean = x.abs().to(torch.float32).sum(dim=0) / x.shape[0]
    return x_mean, w_mean


def block_loss(x, ws, fp_out, scales, bits, sym, group):
    sv = scales.view(1, -1)
    q_out = torch.cat([x @ (pseudo_quantize(w * sv, bits, sym, group) / sv).t() for w in ws], dim=1)
    return (fp_out - q_out).float().pow(2).sum().item() / fp_out.numel()


def search_scales(x, ws, x_mean, w_mean, bits, sym, group, n_grid, duo):
    fp_out = torch.cat([x @ w.t() for w in ws], dim=1)
    losses, candidates = [], []
    best, best_i, best_scales = float("inf"), -1, None
    for i in range(n_grid):
        ratio = i / n_grid
        if duo:
            scales = (x_mean.pow(ratio) / (w_mean.pow(1 - ratio) + 1e-4)).clamp(min=1e-4)
        else:
            scales = x_mean.pow(ratio).clamp(min=1e-4).view(-1)
        scales = scales / (scales.max() * scales.min()).sqrt()
        scales[torch.isinf(scales)] = 1
        scales[torch.isnan(scales)] = 1
        candidates.append(scales.clone())
        loss = block_loss(x, ws, fp_out, scales, bits, sym, group)
        losses.append(loss)
        if loss < best:
            best, best_i, best_scales = loss, i, scales.clone()
    return losses, best_i, best_scales, torch.stack(candidates)


def search_clip(w, x, bits, sym, group, n_grid, max_shrink, n_sample_token):
    n, k = w.shape
    feat = x.reshape(1, x.shape[0], -1, group)
    step = max(1, feat.shape[1] // n_sample_token)
    feat = feat[:, ::step]
    w = w.reshape(n, 1, -1, group)
    batch = 64 if n % 64 == 0 else n  # memory only
    out = []
    for b in range(0, n, batch):
        wb = w[b : b + batch]
        org_max = wb.abs().amax(dim=-1, keepdim=True)
        best_max = org_max.clone()
        min_errs = torch.ones_like(org_max) * 1e9
        org_out = (feat * wb).sum(dim=-1)
        for i_s in range(int(max_shrink * n_grid)):
            max_val = org_max * (1 - i_s / n_grid)
            cur_w = torch.clamp(wb, -max_val, max_val)
            q_w = pseudo_quantize(cur_w, bits, sym, group)
            cur_out = (feat * q_w).sum(dim=-1)
            err = (cur_out - org_out).pow(2).mean(dim=1).view(min_errs.shape)
            better = err < min_errs
            min_errs[better] = err[better]
            best_max[better] = max_val[better]
        out.append(best_max)
    return torch.cat(out, dim=0).reshape(n, -1)


def main():
    d = sys.argv[1]
    torch.set_num_threads(1)
    lines = open(f"{d}/config.txt").read().split("\n")
    rows, k, bits, sym, group, n_grid, duo, n_lin = (int(v) for v in lines[0].split())
    ns = [int(lines[1 + i]) for i in range(n_lin)]
    x = load(f"{d}/x.f32", (rows, k))
    ws = [load(f"{d}/w_{i}.f32", (ns[i], k)) for i in range(n_lin)]
    x_mean, w_mean = statistics(x, ws, group)
    x_mean.numpy().tofile(f"{d}/x_scale_ref.f32")
    w_mean.numpy().tofile(f"{d}/w_scale_ref.f32")
    xs, wsc = load(f"{d}/x_scale.f32", (k,)), load(f"{d}/w_scale.f32", (k,))
    losses, best_i, scales, candidates = search_scales(x, ws, xs, wsc, bits, sym == 1, group, n_grid, duo == 1)
    np.array(losses, dtype=np.float64).tofile(f"{d}/losses_ref.f64")
    open(f"{d}/best_ref.txt", "w").write(str(best_i))
    scales.numpy().tofile(f"{d}/scales_ref.f32")
    candidates.numpy().tofile(f"{d}/candidates_ref.f32")
    # The loss of qstudy's own candidate scales (checks the loss apart from pow's last bit).
    theirs = load(f"{d}/candidates.f32", (n_grid, k))
    fp_out = torch.cat([x @ w.t() for w in ws], dim=1)
    own = [block_loss(x, ws, fp_out, theirs[i], bits, sym == 1, group) for i in range(n_grid)]
    np.array(own, dtype=np.float64).tofile(f"{d}/losses_of_candidates.f64")
    if os.path.exists(f"{d}/clip.txt"):
        g, shrink, tokens = open(f"{d}/clip.txt").read().split()
        mv = search_clip(ws[0], x, bits, sym == 1, group, int(g), float(shrink), int(tokens))
        mv.contiguous().numpy().tofile(f"{d}/max_val_ref.f32")


if __name__ == "__main__":
    main()
