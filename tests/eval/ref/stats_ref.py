#!/usr/bin/env python3
"""Independent reference for src/eval/stats: exact McNemar p-values with integer arithmetic
(math.comb, no floating point until the end), lm-eval's stderr and group aggregation formulas
written from their definitions with the standard library (statistics.stdev, math.fsum).

Usage: stats_ref.py INPUT.json  ->  JSON on stdout.
Input: {"mcnemar": [[b, c], ...], "vectors": [[x...], ...], "groups": [[[x...], [x...]], ...]}
"""
import json
import math
import statistics
import sys


def mcnemar(b, c):
    n, k = b + c, min(b, c)
    if n == 0:
        return 1.0, 0.0
    # p = 2 * sum_{i<=k} C(n, i) / 2^n, capped at 1; exact in integers.
    term, total = 1, 1  # C(n, 0); each next term from the exact recurrence C(n,i+1) = C(n,i)(n-i)/(i+1)
    for i in range(k):
        term = term * (n - i) // (i + 1)
        total += term
    assert k == 0 or term == math.comb(n, k)
    num = 2 * total
    den = 2 ** n
    if num >= den:
        return 1.0, 0.0
    log_p = math.log(num) - math.log(den)  # math.log is exact-to-rounding on big ints
    return num / den, log_p


def mean_stderr(x):
    if len(x) < 2:
        return 0.0
    return statistics.stdev(x) / math.sqrt(len(x))


def main():
    data = json.load(open(sys.argv[1]))
    out = {"mcnemar": [], "vectors": [], "groups": []}
    for b, c in data["mcnemar"]:
        p, log_p = mcnemar(b, c)
        out["mcnemar"].append({"p": p, "log_p": log_p})
    for x in data["vectors"]:
        out["vectors"].append({"mean": math.fsum(x) / len(x), "stderr": mean_stderr(x)})
    for tasks in data["groups"]:
        means = [math.fsum(t) / len(t) for t in tasks]
        ses = [mean_stderr(t) for t in tasks]
        sizes = [len(t) for t in tasks]
        total = sum(sizes)
        pooled_var = math.fsum((n - 1) * se * se * n for n, se in zip(sizes, ses)) / (total - len(sizes))
        out["groups"].append({
            "weighted_mean": math.fsum(m * n for m, n in zip(means, sizes)) / total,
            "macro_mean": math.fsum(means) / len(means),
            "pooled_stderr": math.sqrt(pooled_var / total),
            "macro_stderr": math.sqrt(math.fsum(se * se for se in ses)) / len(ses),
            "concat_stderr": mean_stderr([v for t in tasks for v in t]),
        })
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
