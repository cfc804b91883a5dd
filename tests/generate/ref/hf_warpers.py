#!/usr/bin/env python3
"""Reference for qstudy's sampling filters, written from the Hugging Face transformers logits
processors (RepetitionPenaltyLogitsProcessor, TemperatureLogitsWarper, TopKLogitsWarper,
TopPLogitsWarper, MinPLogitsWarper), applied in transformers' order, in torch.

stdin: JSON list of cases {"logits": [...], "history": [...], "temperature", "top_k", "top_p",
"min_p", "repeat_penalty"}; stdout: JSON list of {"ids": [...], "probs": [...]}: the tokens
left with non-zero probability (ascending ids) and their final probabilities.
"""
import json
import sys

import torch


def filtered(case):
    scores = torch.tensor(case["logits"], dtype=torch.float64)[None, :]
    hist = case["history"]
    r = case["repeat_penalty"]
    if r != 1.0 and hist:
        idx = torch.tensor(hist)[None, :]
        score = torch.gather(scores, 1, idx)
        score = torch.where(score < 0, score * r, score / r)
        scores = scores.scatter(1, idx, score)
    scores = scores / case["temperature"]
    k = case["top_k"]
    if k > 0:
        k = min(k, scores.size(-1))
        kth = torch.topk(scores, k)[0][..., -1, None]
        scores = scores.masked_fill(scores < kth, -float("inf"))
    p = case["top_p"]
    if p < 1.0:
        sorted_logits, sorted_idx = torch.sort(scores, descending=False)
        cum = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
        remove = cum <= (1 - p)
        remove[..., -1:] = 0
        scores = scores.masked_fill(remove.scatter(1, sorted_idx, remove), -float("inf"))
    m = case["min_p"]
    if m > 0:
        probs = torch.softmax(scores, dim=-1)
        top = probs.amax(dim=-1, keepdim=True)
        remove = probs < m * top
        sorted_idx = torch.argsort(scores, descending=True, dim=-1)
        sorted_remove = torch.gather(remove, -1, sorted_idx)
        sorted_remove[..., :1] = False
        scores = scores.masked_fill(sorted_remove.scatter(1, sorted_idx, sorted_remove), -float("inf"))
    probs = torch.softmax(scores, dim=-1)[0]
    ids = [i for i in range(probs.numel()) if probs[i] > 0]
    return {"ids": ids, "probs": [float(probs[i]) for i in ids]}


print(json.dumps([filtered(c) for c in json.load(sys.stdin)]))
