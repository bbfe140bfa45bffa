#!/usr/bin/env python3
"""The table of scripts/bench: medians over rounds per target, ratios and added
latency against nginx and against the MCP server reached directly, and authhost's RSS.

    python3 tests/bench/report.py <results.tsv> <rss.tsv> <meta.txt>

results.tsv: round conns target requests rps p50_us p99_us errors non2xx  (tab-separated)
rss.tsv:     label kib                                                     (tab-separated)
meta.txt:    free text lines, printed above the table
"""

import statistics
import sys

# target -> (nginx baseline, direct baseline)
TARGETS = [
    ("direct-json", None, None),
    ("nginx-json", None, "direct-json"),
    ("authhost-json", "nginx-json", "direct-json"),
    ("authhost-policed", "nginx-json", "direct-json"),
    ("direct-sse", None, None),
    ("nginx-sse", None, "direct-sse"),
    ("authhost-sse", "nginx-sse", "direct-sse"),
    ("baseline-json", "nginx-json", "direct-json"),
    ("baseline-policed", "nginx-json", "direct-json"),
    ("baseline-sse", "nginx-sse", "direct-sse"),
]


def read_tsv(path):
    with open(path) as f:
        return [line.rstrip("\n").split("\t") for line in f if line.strip()]


def main():
    results, rss, meta = sys.argv[1:4]
    runs = {}
    for rnd, conns, target, requests, rps, p50, p99, errors, non2xx in read_tsv(results):
        run = runs.setdefault((int(conns), target), {"rps": [], "p50": [], "p99": [], "errors": 0, "non2xx": 0, "requests": 0, "rounds": 0})
        run["rps"].append(float(rps))
        run["p50"].append(int(p50) / 1000)
        run["p99"].append(int(p99) / 1000)
        run["errors"] += int(errors)
        run["non2xx"] += int(non2xx)
        run["requests"] += int(requests)
        run["rounds"] += 1

    out = []
    with open(meta) as f:
        out.extend(line.rstrip("\n") for line in f)
    out.append("")
    header = f"{'target':<17} {'conns':>5} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'÷nginx':>7} {'÷direct':>7} {'+p50 ms':>8} {'+p99 ms':>8} {'errors':>7}"
    out.append("Medians of rounds per target (req/s, p50, p99 each the median of the rounds' figures)")
    out.append("÷nginx, ÷direct: throughput ratio; +p50, +p99: added latency over the same server reached directly")
    for conns in sorted({c for c, _ in runs}, reverse=True):
        out.append("")
        out.append(header)
        out.append("-" * len(header))
        med = {}
        for target, _, _ in TARGETS:
            run = runs.get((conns, target))
            if run:
                med[target] = (statistics.median(run["rps"]), statistics.median(run["p50"]), statistics.median(run["p99"]))
        for target, nginx, direct in TARGETS:
            run = runs.get((conns, target))
            if not run:
                continue
            rps, p50, p99 = med[target]
            cells = [f"{target:<17}", f"{conns:>5}", f"{rps:>9.0f}", f"{p50:>8.2f}", f"{p99:>8.2f}"]
            cells.append(f"{rps / med[nginx][0]:>7.3f}" if nginx in med and med[nginx][0] else f"{'':>7}")
            cells.append(f"{rps / med[direct][0]:>7.3f}" if direct in med and med[direct][0] else f"{'':>7}")
            cells.append(f"{p50 - med[direct][1]:>+8.2f}" if direct in med else f"{'':>8}")
            cells.append(f"{p99 - med[direct][2]:>+8.2f}" if direct in med else f"{'':>8}")
            bad = run["errors"] + run["non2xx"]
            cells.append(f"{bad:>7}")
            out.append(" ".join(cells))
    out.append("")
    out.append("errors: socket errors + timeouts + non-2xx answers, summed over the rounds")

    samples = read_tsv(rss)
    if samples:
        out.append("")
        out.append("authhost RSS (VmRSS)")
        for label, kib in samples:
            out.append(f"  {label:<28} {int(kib) / 1024:>8.1f} MiB")
    print("\n".join(out))


if __name__ == "__main__":
    main()
