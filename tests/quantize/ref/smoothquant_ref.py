"""Independent SmoothQuant reference in PyTorch: the scales as mit-han-lab/smoothquant's
smooth_ln_fcs computes them, and the W8A8-INT8 output error of a layer before and after
smoothing, simulated with torch tensors:
  activations: per-token symmetric int8, restricted range (vLLM): scale = amax / 127, [-127, 127]
  weights:     per-output-channel symmetric int8, compressed-tensors range: scale = amax / 127.5,
               [-128, 127]
  error:       ||X_q W_q^T - X W^T||_F / ||X W^T||_F (float64 norms of f32 products)

usage: smoothquant_ref.py DIR
  DIR/config.txt: "rows k n alpha"; DIR/x.f32 [rows, k] (the norm's input), DIR/g.f32 [k] (norm
  weight: the layer's input is x * g), DIR/w.f32 [n, k]
writes DIR/scales_ref.f32 [k], DIR/errors_ref.txt: "error_before error_after float_equivalence"
"""
import os
import sys

os.environ["OPENBLAS_NUM_THREADS"] = "1"

import numpy as np  # noqa: E402
import torch  # noqa: E402


def load(path, shape):
    return torch.from_numpy(np.fromfile(path, dtype=np.float32)).reshape(shape)


def per_token_int8(x):
    scale = x.abs().amax(dim=1, keepdim=True) / 127
    scale = torch.where(scale > 0, scale, torch.full_like(scale, 2.0**-149))
    return torch.clamp(torch.round(x / scale), -127, 127) * scale


def per_channel_int8(w):
    scale = w.abs().amax(dim=1, keepdim=True) / 127.5
    scale = torch.where(scale > 0, scale, torch.full_like(scale, 2.0**-149))
    return torch.clamp(torch.round(w / scale), -128, 127) * scale


def rel_error(y, y_ref):
    return (torch.linalg.norm((y.double() - y_ref.double())) / torch.linalg.norm(y_ref.double())).item()


def main():
    d = sys.argv[1]
    torch.set_num_threads(1)
    rows, k, n, alpha = open(f"{d}/config.txt").read().split()
    rows, k, n, alpha = int(rows), int(k), int(n), float(alpha)
    x, g, w = load(f"{d}/x.f32", (rows, k)), load(f"{d}/g.f32", (k,)), load(f"{d}/w.f32", (n, k))
    act = x * g
    y = act @ w.t()
    # smooth_ln_fcs
    act_scales = act.abs().amax(dim=0)
    weight_scales = w.abs().max(dim=0)[0].clamp(min=1e-5)
    scales = (act_scales.pow(alpha) / weight_scales.pow(1 - alpha)).clamp(min=1e-5)
    g_s = g / scales
    w_s = w * scales.view(1, -1)
    act_s = x * g_s
    y_s = act_s @ w_s.t()
    before = rel_error(per_token_int8(act) @ per_channel_int8(w).t(), y)
    after = rel_error(per_token_int8(act_s) @ per_channel_int8(w_s).t(), y)
    scales.numpy().tofile(f"{d}/scales_ref.f32")
    open(f"{d}/errors_ref.txt", "w").write(f"{before!r} {after!r} {rel_error(y_s, y)!r}")


if __name__ == "__main__":
    main()
