#!/usr/bin/env python3
"""Independent reference for src/eval/kld: per-token values with PyTorch (float64
log_softmax and torch.nn.functional.kl_div), aggregates written from llama.cpp's
`kl_divergence()` report (tools/perplexity/perplexity.cpp) with numpy, percentiles with
numpy.percentile (linear), and the top-k bucketed KLD with numpy.

Usage: kld_ref.py DIR  (DIR holds meta.json {"tokens": T, "vocab": V, "k": K}, base.f32 and
model.f32 as [T, V] float32, next.i32 as [T] int32)  ->  JSON on stdout.
"""
import json
import math
import sys

import numpy as np
import torch


def mean_and_uncertainty(values):
    n = len(values)
    f = float(np.mean(values))
    var = float(np.mean(values * values)) - f * f
    return f, (math.sqrt(var / (n - 1)) if var > 0 and n > 10 else 0.0)


def main():
    d = sys.argv[1]
    meta = json.load(open(d + "/meta.json"))
    T, V, K = meta["tokens"], meta["vocab"], meta["k"]
    base = np.fromfile(d + "/base.f32", dtype=np.float32).reshape(T, V).astype(np.float64)
    model = np.fromfile(d + "/model.f32", dtype=np.float32).reshape(T, V).astype(np.float64)
    nxt = np.fromfile(d + "/next.i32", dtype=np.int32).astype(np.int64)

    lp = torch.log_softmax(torch.from_numpy(base), dim=-1)
    lq = torch.log_softmax(torch.from_numpy(model), dim=-1)
    # kl_div(input=log q, target=log p, log_target=True) = p * (log p - log q) elementwise.
    kld = torch.nn.functional.kl_div(lq, lp, reduction="none", log_target=True).sum(-1).numpy()
    lp, lq = lp.numpy(), lq.numpy()
    rows = np.arange(T)
    nll = -lq[rows, nxt]
    nll_base = -lp[rows, nxt]
    dp = np.exp(-nll) - np.exp(-nll_base)
    same_top = np.argmax(base, axis=1) == np.argmax(model, axis=1)  # first index on ties

    # Top-K bucketed KLD: top ids by (logit desc, id asc), the rest merged into one bucket.
    bucket = np.empty(T)
    tail_mass = np.empty(T)
    for t in range(T):
        order = np.lexsort((np.arange(V), -base[t]))[:K]
        mask = np.zeros(V, dtype=bool)
        mask[order] = True
        p_top, lq_top = np.exp(lp[t, order]), lq[t, order]
        P_T = float(np.exp(lp[t, ~mask]).sum()) if K < V else 0.0
        Q_T = float(np.exp(lq[t, ~mask]).sum()) if K < V else 0.0
        b = float(np.sum(p_top * (lp[t, order] - lq_top)))
        if P_T > 0:
            b += P_T * (math.log(P_T) - math.log(Q_T))
        bucket[t] = b
        tail_mass[t] = P_T

    def pct(x, f):
        return float(np.percentile(x, 100 * f, method="linear"))

    lppl, lppl_err = mean_and_uncertainty(nll)
    lbase, lbase_err = mean_and_uncertainty(nll_base)
    cov = float(np.mean(nll * nll_base) - np.mean(nll) * np.mean(nll_base)) / (T - 1) if T >= 10 else 0.0
    ppl, ppl_b = math.exp(lppl), math.exp(lbase)
    ratio_err = math.sqrt(max(lppl_err ** 2 + lbase_err ** 2 - 2 * cov, 0.0))
    kmean, kerr = mean_and_uncertainty(kld)
    dmean, derr = mean_and_uncertainty(dp)
    mse, mse_err = mean_and_uncertainty(dp * dp)
    rms = math.sqrt(mse)
    same = float(np.mean(same_top))
    ppl_err, ppl_b_err = ppl * lppl_err, ppl_b * lbase_err
    stats = {
        "ppl_model": ppl, "ppl_model_err": ppl_err,
        "ppl_base": ppl_b, "ppl_base_err": ppl_b_err,
        "ln_ppl_correlation": cov / (lppl_err * lbase_err),
        "ln_ppl_ratio": lppl - lbase, "ln_ppl_ratio_err": ratio_err,
        "ppl_ratio": math.exp(lppl - lbase), "ppl_ratio_err": math.exp(lppl - lbase) * ratio_err,
        "ppl_diff": ppl - ppl_b,
        "ppl_diff_err": math.sqrt(max(ppl_err ** 2 + ppl_b_err ** 2 - 2 * ppl * ppl_b * cov, 0.0)),
        "kld_mean": kmean, "kld_mean_err": kerr,
        "kld_max": float(kld.max()), "kld_min": float(kld.min()), "kld_median": float(np.median(kld)),
        "kld_p99_9": pct(kld, 0.999), "kld_p99": pct(kld, 0.99), "kld_p95": pct(kld, 0.95),
        "kld_p90": pct(kld, 0.90), "kld_p10": pct(kld, 0.10), "kld_p5": pct(kld, 0.05),
        "kld_p1": pct(kld, 0.01), "kld_p0_1": pct(kld, 0.001),
        "dp_mean": dmean, "dp_mean_err": derr,
        "dp_max": float(dp.max()), "dp_min": float(dp.min()), "dp_median": float(np.median(dp)),
        "dp_p99_9": pct(dp, 0.999), "dp_p99": pct(dp, 0.99), "dp_p95": pct(dp, 0.95), "dp_p90": pct(dp, 0.90),
        "dp_p75": pct(dp, 0.75), "dp_p25": pct(dp, 0.25), "dp_p10": pct(dp, 0.10), "dp_p5": pct(dp, 0.05),
        "dp_p1": pct(dp, 0.01), "dp_p0_1": pct(dp, 0.001),
        "dp_rms": rms, "dp_rms_err": 0.5 / rms * mse_err,
        "same_top_pct": 100 * same, "same_top_pct_err": 100 * math.sqrt(same * (1 - same) / (T - 1)),
    }
    json.dump({"kld": kld.tolist(), "dp": dp.tolist(), "bucket_kld": bucket.tolist(),
               "tail_mass": tail_mass.tolist(), "stats": stats}, sys.stdout)


if __name__ == "__main__":
    main()
