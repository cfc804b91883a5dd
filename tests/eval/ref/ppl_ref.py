#!/usr/bin/env python3
"""llama.cpp-convention perplexity (llama-perplexity) over token ids, using the independent
PyTorch forward in tests/model/ref/llama_ref.py.

Usage: ppl_ref.py --model PATH --tokens-file F.json --ctx N [--bos ID]
Prints JSON {"ppl", "ppl_stderr", "tokens_scored", "chunks"}.
"""
import argparse
import json
import math
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "model", "ref"))
import llama_ref  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--tokens-file", required=True)
    ap.add_argument("--ctx", type=int, required=True)
    ap.add_argument("--bos", type=int, default=None)
    a = ap.parse_args()
    torch.set_num_threads(1)
    cfg, t, meta = llama_ref.load_llama2c(a.model) if a.model.endswith(".bin") else llama_ref.load_hf(a.model)
    with open(a.tokens_file) as f:
        tokens = json.load(f)
    n_chunks = len(tokens) // a.ctx
    first = a.ctx // 2
    nlls = []
    for c in range(n_chunks):
        chunk = tokens[c * a.ctx:(c + 1) * a.ctx]
        if a.bos is not None:
            chunk[0] = a.bos
        logp = torch.log_softmax(llama_ref.forward(cfg, t, meta, chunk), dim=-1)
        for i in range(first, a.ctx - 1):
            nlls.append(-float(logp[i, chunk[i + 1]]))
    n = len(nlls)
    mean = sum(nlls) / n
    var = sum(x * x for x in nlls) / n - mean * mean
    ppl = math.exp(mean)
    print(json.dumps({"ppl": ppl, "ppl_stderr": ppl * math.sqrt(var / (n - 1)), "tokens_scored": n,
                      "chunks": n_chunks}))


if __name__ == "__main__":
    main()
