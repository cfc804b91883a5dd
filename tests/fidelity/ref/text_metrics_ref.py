#!/usr/bin/env python3
"""Independent reference for src/fidelity/text_metrics.

Two kinds of reference, both run with Debian's /usr/bin/python3:
  * Python re-implementations written from the published definitions of Google's rouge-score
    (tokenize.py: lower(), [^a-z0-9]+ -> ' ', split, keep ^[a-z0-9]+$; ROUGE-N, sentence LCS)
    and sacreBLEU 2.x (Tokenizer13a + TokenizerRegexp with Python's `re`, BLEU.compute_bleu,
    CHRF._compute_f_score / _get_match_statistics). Python's own str.lower(), str.split() and
    `re` supply the Unicode and regex semantics that the C++ code reproduces by hand.
  * NLTK 3.8 (Debian python3-nltk): nltk.translate.bleu_score with SmoothingFunction().method3
    (= sacreBLEU 'exp') on the same 13a tokens, and nltk.translate.chrf_score.sentence_chrf
    with beta=2 (= sacreBLEU chrF with eps_smoothing=True).

Usage: text_metrics_ref.py INPUT.json -> JSON on stdout.
Input: {"pairs": [[reference, hypothesis], ...]}.
"""
import json
import math
import re
import sys
from collections import Counter

from nltk.translate.bleu_score import SmoothingFunction, corpus_bleu, sentence_bleu
from nltk.translate.chrf_score import sentence_chrf

# ---------------------------------------------------------------- rouge-score
NON_ALNUM = re.compile(r"[^a-z0-9]+")
SPACES = re.compile(r"\s+")
VALID = re.compile(r"^[a-z0-9]+$")


def rouge_tokenize(text):
    text = NON_ALNUM.sub(" ", text.lower())
    return [t for t in SPACES.split(text) if VALID.match(t)]


def fmeasure(p, r):
    return 2 * p * r / (p + r) if p + r > 0 else 0.0


def rouge_n(ref, hyp, n):
    rc = Counter(tuple(ref[i:i + n]) for i in range(len(ref) - n + 1))
    hc = Counter(tuple(hyp[i:i + n]) for i in range(len(hyp) - n + 1))
    overlap = sum(min(c, hc[g]) for g, c in rc.items())
    p = overlap / max(sum(hc.values()), 1)
    r = overlap / max(sum(rc.values()), 1)
    return [p, r, fmeasure(p, r)]


def rouge_l(ref, hyp):
    if not ref or not hyp:
        return [0.0, 0.0, 0.0]
    table = [[0] * (len(hyp) + 1) for _ in range(len(ref) + 1)]
    for i in range(1, len(ref) + 1):
        for j in range(1, len(hyp) + 1):
            table[i][j] = table[i - 1][j - 1] + 1 if ref[i - 1] == hyp[j - 1] else max(table[i - 1][j], table[i][j - 1])
    lcs = table[-1][-1]
    p, r = lcs / len(hyp), lcs / len(ref)
    return [p, r, fmeasure(p, r)]


# ---------------------------------------------------------------- sacreBLEU 13a + BLEU
REGEXES = [
    (re.compile(r"([\{-\~\[-\` -\&\(-\+\:-\@\/])"), r" \1 "),
    (re.compile(r"([^0-9])([\.,])"), r"\1 \2 "),
    (re.compile(r"([\.,])([^0-9])"), r" \1 \2"),
    (re.compile(r"([0-9])(-)"), r"\1 \2 "),
]


def tok13a(line):
    line = line.rstrip()
    line = line.replace("<skipped>", "").replace("-\n", "").replace("\n", " ")
    line = line.replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")
    line = " {} ".format(line)
    for regex, repl in REGEXES:
        line = regex.sub(repl, line)
    return " ".join(line.strip().split())


def ngrams_upto(words, max_order):
    return Counter(tuple(words[i:i + n]) for n in range(1, max_order + 1) for i in range(len(words) - n + 1))


def bleu_stats(hyp, refs, max_order=4):
    refs = [r for r in refs if r != ""]
    ref_max, ref_lens = Counter(), []
    for r in refs:
        words = tok13a(r).split()
        ref_lens.append(len(words))
        for g, c in ngrams_upto(words, max_order).items():
            ref_max[g] = max(ref_max[g], c)
    words = tok13a(hyp).split()
    hyp_len = len(words)
    closest_diff, ref_len = -1, -1
    for rl in ref_lens:
        diff = abs(hyp_len - rl)
        if closest_diff == -1 or diff < closest_diff:
            closest_diff, ref_len = diff, rl
        elif diff == closest_diff and rl < ref_len:
            ref_len = rl
    correct, total = [0] * max_order, [0] * max_order
    for g, c in ngrams_upto(words, max_order).items():
        total[len(g) - 1] += c
        correct[len(g) - 1] += min(c, ref_max.get(g, 0))
    return [hyp_len, ref_len] + correct + total


def compute_bleu(stats, effective_order, max_order=4):
    sys_len, ref_len = stats[0], stats[1]
    correct, total = stats[2:2 + max_order], stats[2 + max_order:]
    bp = 1.0 if sys_len >= ref_len else (math.exp(1 - ref_len / sys_len) if sys_len > 0 else 0.0)
    if not any(correct):
        return 0.0
    precisions = [0.0] * max_order
    smooth, eff = 1.0, max_order
    for n in range(1, max_order + 1):
        if total[n - 1] == 0:
            break
        if effective_order:
            eff = n
        if correct[n - 1] == 0:
            smooth *= 2
            precisions[n - 1] = 100.0 / (smooth * total[n - 1])
        else:
            precisions[n - 1] = 100.0 * correct[n - 1] / total[n - 1]
    return bp * math.exp(sum(-9999999999 if p == 0 else math.log(p) for p in precisions[:eff]) / eff)


# ---------------------------------------------------------------- sacreBLEU chrF
def char_ngrams(line, order):
    line = "".join(line.split())
    return [Counter(line[i:i + n] for i in range(len(line) - n + 1)) for n in range(1, order + 1)]


def chrf_stats(hyp, ref, order=6):
    stats = []
    for h, r in zip(char_ngrams(hyp, order), char_ngrams(ref, order)):
        match = sum(min(c, r[g]) for g, c in h.items() if g in r)
        stats += [sum(h.values()) if r else 0, sum(r.values()), match]
    return stats


def chrf_score(stats, eps_smoothing, beta=2, order=6):
    eps, factor = 1e-16, beta ** 2
    score, avg_p, avg_r, eff = 0.0, 0.0, 0.0, 0
    for i in range(order):
        n_hyp, n_ref, n_match = stats[3 * i:3 * i + 3]
        prec = n_match / n_hyp if n_hyp > 0 else eps
        rec = n_match / n_ref if n_ref > 0 else eps
        denom = factor * prec + rec
        score += (1 + factor) * prec * rec / denom if denom > 0 else eps
        if n_hyp > 0 and n_ref > 0:
            avg_p, avg_r, eff = avg_p + prec, avg_r + rec, eff + 1
    if eps_smoothing:
        return 100 * score / order
    if eff == 0:
        return 0.0
    avg_p, avg_r = avg_p / eff, avg_r / eff
    return 100 * (1 + factor) * avg_p * avg_r / (factor * avg_p + avg_r) if avg_p + avg_r else 0.0


def main():
    pairs = json.load(open(sys.argv[1]))["pairs"]
    out = {"pairs": []}
    bleu_total, chrf_total = None, None
    nltk_refs, nltk_hyps = [], []
    method3 = SmoothingFunction().method3
    for ref, hyp in pairs:
        rt, ht = rouge_tokenize(ref), rouge_tokenize(hyp)
        b = bleu_stats(hyp, [ref])
        c = chrf_stats(hyp, ref)
        bleu_total = b if bleu_total is None else [x + y for x, y in zip(bleu_total, b)]
        chrf_total = c if chrf_total is None else [x + y for x, y in zip(chrf_total, c)]
        rw, hw = tok13a(ref).split(), tok13a(hyp).split()
        nltk_refs.append([rw])
        nltk_hyps.append(hw)
        out["pairs"].append({
            "rouge_ref_tokens": rt, "rouge_hyp_tokens": ht,
            "rouge1": rouge_n(rt, ht, 1), "rouge2": rouge_n(rt, ht, 2), "rougeL": rouge_l(rt, ht),
            "tok13a_ref": tok13a(ref), "tok13a_hyp": tok13a(hyp),
            "bleu_stats": b, "sentence_bleu": compute_bleu(b, effective_order=True),
            "chrf": chrf_score(c, False), "chrf_eps": chrf_score(c, True),
            # NLTK: only where its definitions meet sacreBLEU's (see the C++ test).
            "nltk_bleu": 100 * sentence_bleu([rw], hw, smoothing_function=method3) if hw else None,
            "nltk_chrf": 100 * sentence_chrf(ref, hyp, beta=2.0),
        })
    out["corpus_bleu"] = compute_bleu(bleu_total, effective_order=False)
    out["corpus_chrf"] = chrf_score(chrf_total, False)
    out["nltk_corpus_bleu"] = 100 * corpus_bleu(nltk_refs, nltk_hyps, smoothing_function=method3)
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
