#!/usr/bin/env python3
"""Runs qstudy_kernel_bench and prints qstudy vs oneDNN vs OpenBLAS side by side.

Usage: bench/compare_gemm.py [--bench build/bench/qstudy_kernel_bench] [--filter REGEX]
                             [--repetitions N] [--json saved.json]

All implementations run in one process, repetitions randomly interleaved, so background load
hits them alike. For each (dtype, shape, M) the table shows the median over repetitions and,
in brackets, the best repetition; "cpu" columns are GFLOP per CPU-second of the process (per
core, insensitive to other processes competing for the cores), also as a share of the peak
per core (measured peak / threads). M=1 rows also show GB/s of
weights and the share of the measured memory bandwidth (the decode roofline).
"""
import argparse
import json
import re
import statistics
import subprocess
import sys
from collections import defaultdict

IMPLS = ["qstudy", "onednn", "onednn_packed", "openblas"]


def run_bench(args):
    cmd = [args.bench, "--benchmark_format=json", f"--benchmark_filter={args.filter}",
           f"--benchmark_repetitions={args.repetitions}", "--benchmark_enable_random_interleaving=true",
           "--benchmark_report_aggregates_only=false"]
    if args.min_time:
        cmd.append(f"--benchmark_min_time={args.min_time}")
    print("running:", " ".join(cmd), file=sys.stderr)
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
    return json.loads(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", default="build/bench/qstudy_kernel_bench")
    ap.add_argument("--filter", default="^matmul/")
    ap.add_argument("--repetitions", type=int, default=3)
    ap.add_argument("--min_time", default=None)
    ap.add_argument("--json", help="read a saved --benchmark_format=json output instead of running")
    args = ap.parse_args()
    data = json.load(open(args.json)) if args.json else run_bench(args)

    ctx = data.get("context", {})
    bw = float(ctx.get("qstudy_mem_bw_gbs", "nan"))
    print(f"cpu: {ctx.get('qstudy_cpu')}, threads {ctx.get('qstudy_threads')}, load avg {ctx.get('load_avg')}")
    print(f"memory bandwidth {bw} GB/s, peak f32 {ctx.get('qstudy_peak_gflops_f32')} GFLOP/s, "
          f"peak bf16 {ctx.get('qstudy_peak_gflops_bf16')} GFLOP/s")

    runs = defaultdict(lambda: defaultdict(list))
    others = defaultdict(list)
    pat = re.compile(r"^matmul/(\w+)/([\w.]+)/M:(\d+)/(\w+)")
    for b in data["benchmarks"]:
        if b.get("run_type") != "iteration":
            continue
        m = pat.match(b["name"])
        if not m:
            others[b["name"].replace("/real_time", "")].append(b)
            continue
        key = (m.group(1), m.group(2), int(m.group(3)))
        runs[key][m.group(4)].append(b)

    def stat(lst, counter):
        vals = [r[counter] for r in lst if counter in r]
        if not vals:
            return None
        return statistics.median(vals), max(vals)

    def fmt(s, width=15):
        return f"{s[0]:7.1f} [{s[1]:6.1f}]".rjust(width) if s else "-".rjust(width)

    for M in sorted({k[2] for k in runs}):
        rate = "GB/s" if M == 1 else "GFLOP/s"
        print()
        print(f"M = {M}: {rate} median [best]" + ("" if M == 1 else "; cpu = GFLOP/cpu_s median"))
        header = f"{'dtype':5} {'shape':18}" + "".join(f"{i:>16}" for i in IMPLS)
        header += "   ours/best-lib" + ("   %bw(ours)" if M == 1 else "   cpu ours/best-lib   cpu ours (%peak/core)")
        print(header)
        for key in sorted(k for k in runs if k[2] == M):
            dtype, shape, _ = key
            line = f"{dtype:5} {shape:18}"
            meds = {}
            cpus = {}
            for impl in IMPLS:
                s = stat(runs[key].get(impl, []), rate)
                c = stat(runs[key].get(impl, []), "GFLOP/cpu_s")
                if s:
                    meds[impl] = s[0]
                if c:
                    cpus[impl] = c[0]
                line += " " + fmt(s)
            libs = [v for k, v in meds.items() if k != "qstudy"]
            if "qstudy" in meds and libs:
                line += f"   {meds['qstudy'] / max(libs):8.2f}x"
            else:
                line += " " * 12
            if M == 1 and "qstudy" in meds and bw == bw:
                line += f"   {100 * meds['qstudy'] / bw:7.1f}%"
            elif M > 1:
                clibs = [v for k, v in cpus.items() if k != "qstudy"]
                if "qstudy" in cpus and clibs:
                    line += f"   {cpus['qstudy'] / max(clibs):8.2f}x"
                if "qstudy" in cpus:
                    peak = float(ctx.get(f"qstudy_peak_gflops_{dtype}", "nan")) / float(ctx.get("qstudy_threads", 1))
                    line += f"   {cpus['qstudy']:10.1f} ({100 * cpus['qstudy'] / peak:4.0f}%)"
            print(line)

    if others:
        print()
        print("other kernels: wall time median [best]; counters median")
        for name in sorted(others):
            times = sorted(r["real_time"] for r in others[name])
            unit = others[name][0].get("time_unit", "ns")
            scale = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}[unit]
            extra = ""
            for c in ("GB/s", "GFLOP/s", "GFLOP/cpu_s"):
                v = stat(others[name], c)
                if v:
                    extra += f"  {c} {v[0]:.1f}"
            print(f"  {name:48} {statistics.median(times) * scale:9.3f} ms [{times[0] * scale:9.3f}]{extra}")


if __name__ == "__main__":
    main()
