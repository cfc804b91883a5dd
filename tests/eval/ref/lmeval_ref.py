#!/usr/bin/env python3
"""Independent reference for qstudy's benchmark scoring: lm-evaluation-harness's conventions
re-implemented from its source (HFLM._encode_pair, _loglikelihood_tokens, the multiple-choice
process_results) over the PyTorch forward of tests/model/ref/llama_ref.py (float64) and the
llama2.c tokenizer transcription of tests/tokenizer/llama2c_reference.py. Nothing here is
shared with the C++ code: prompts are built from the raw data files with lm-eval's templates.

Usage: lmeval_ref.py --model stories260K.bin --tokenizer tok512.bin --data-dir DIR
                     --task arc_easy|winogrande --limit N [--add-bos]
Prints a JSON list, one object per document:
  {"lls": [...], "greedy": [...], "pred": i, "pred_norm": i, "gold": i, "acc": 0/1, "acc_norm": 0/1}
"""
import argparse
import json
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "model", "ref"))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tokenizer"))
import llama_ref  # noqa: E402
import llama2c_reference  # noqa: E402


class Tok:
    def __init__(self, path, add_bos):
        self.vocab, self.scores = llama2c_reference.read_tokenizer(path)
        self.lookup = {}
        for i, piece in enumerate(self.vocab):
            self.lookup.setdefault(piece, i)
        self.add_bos = add_bos

    def encode(self, text):
        ids = llama2c_reference.encode(text, self.vocab, self.scores, self.lookup)
        return ids if self.add_bos else ids[1:]  # HFLM: add_special_tokens = add_bos_token


def encode_pair(tok, context, continuation):
    # lm-eval HFLM._encode_pair
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces > 0:
        continuation = context[-n_spaces:] + continuation
        context = context[:-n_spaces]
    whole = tok.encode(context + continuation)
    ctx = tok.encode(context)
    return ctx, whole[len(ctx):]


def loglikelihood(model, ctx, cont, max_length):
    # lm-eval HFLM._loglikelihood_tokens for one request
    cfg, t, meta = model
    inp = (ctx + cont)[-(max_length + 1):][:-1]
    logits = llama_ref.forward(cfg, t, meta, inp)
    logp = torch.log_softmax(logits, dim=-1)[len(inp) - len(cont):]
    greedy = bool((logp.argmax(dim=-1) == torch.tensor(cont)).all())
    ll = float(logp.gather(1, torch.tensor(cont).unsqueeze(1)).sum())
    return ll, greedy


def docs(task, data_dir, limit):
    if task == "arc_easy":
        with open(os.path.join(data_dir, "arc/ARC-Easy/test.json")) as f:
            rows = json.load(f)[:limit]
        for r in rows:
            choices = r["choices"]["text"]
            gold = r["choices"]["label"].index(r["answerKey"])
            ctx = "Question: " + r["question"] + "\nAnswer:"
            yield [(ctx, " " + c) for c in choices], choices, gold
    elif task == "winogrande":
        with open(os.path.join(data_dir, "llm-foundry/winogrande.jsonl")) as f:
            rows = [json.loads(line) for line in f][:limit]
        for r in rows:
            options = r["context_options"]  # sentence[:blank] + option, as lm-eval's doc_to_choice
            yield [(o, " " + r["continuation"]) for o in options], options, r["gold"]
    else:
        raise SystemExit("unknown task " + task)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--task", required=True)
    ap.add_argument("--limit", type=int, required=True)
    ap.add_argument("--add-bos", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(1)
    model = llama_ref.load_llama2c(a.model)
    max_length = model[0].get("max_position_embeddings", 512)
    tok = Tok(a.tokenizer, a.add_bos)
    out = []
    for requests, choices, gold in docs(a.task, a.data_dir, a.limit):
        lls, greedy = [], []
        for ctx, cont in requests:
            c, x = encode_pair(tok, ctx, cont)
            ll, g = loglikelihood(model, c, x, max_length)
            lls.append(ll)
            greedy.append(g)
        # lm-eval multiple_choice process_results: argmax of lls, and of lls / len(choice)
        norm = [ll / len(c) for ll, c in zip(lls, choices)]
        pred = max(range(len(lls)), key=lambda i: (lls[i], -i))
        pred_norm = max(range(len(norm)), key=lambda i: (norm[i], -i))
        out.append({"lls": lls, "greedy": greedy, "pred": pred, "pred_norm": pred_norm, "gold": gold,
                    "acc": int(pred == gold), "acc_norm": int(pred_norm == gold)})
    print(json.dumps(out))


if __name__ == "__main__":
    main()
