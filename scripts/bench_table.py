#!/usr/bin/env python3
"""Prints the aa-runtime benchmark results as a Markdown table.

Reads criterion's `target/criterion/<group>/<bench>/new/{estimates,benchmark}.json`
for the groups below (or those named on the command line) and prints, per bench:
median time, throughput, and the ratio of its median to the group's baseline
(the bench whose name does not start with `aa`; ratio < 1 means faster than the
baseline). Ends with the machine: `nproc` and the CPU model.

Usage (from the workspace root):
    cargo bench -p aa-runtime && python3 scripts/bench_table.py
Options:
    --criterion DIR   criterion output directory (default: target/criterion,
                      or $CARGO_TARGET_DIR/criterion)
    GROUP ...         groups to print (default: zc_insert csv_short csv_long)
"""

import json
import os
import sys

GROUPS = ["zc_insert", "csv_short", "csv_long"]
# Groups where one iteration is one TCP segment: time is shown per segment.
SEGMENT_GROUPS = {"zc_insert"}
# Targets of zc_insert/aa: at most this fraction of the baseline, and this many ns.
ZC_MAX_RATIO = 1 / 3
ZC_MAX_NS = 10.0


def fmt_time(ns):
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.3g} {unit}"
    return f"{ns:.3g} ns"


def load(root, group, bench):
    base = os.path.join(root, group, bench, "new")
    with open(os.path.join(base, "estimates.json")) as f:
        est = json.load(f)
    try:
        with open(os.path.join(base, "benchmark.json")) as f:
            meta = json.load(f)
    except OSError:
        meta = {}
    median = est["median"]["point_estimate"]  # ns per iteration
    lo = est["median"]["confidence_interval"]["lower_bound"]
    hi = est["median"]["confidence_interval"]["upper_bound"]
    tp = (meta.get("throughput") or {}).get("Bytes")
    return {"bench": bench, "median": median, "lo": lo, "hi": hi, "bytes": tp}


def benches_of(root, group):
    d = os.path.join(root, group)
    if not os.path.isdir(d):
        return []
    return sorted(
        b
        for b in os.listdir(d)
        if os.path.isfile(os.path.join(d, b, "new", "estimates.json"))
    )


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def nproc():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count()


def main(argv):
    root = None
    groups = []
    args = iter(argv)
    for a in args:
        if a == "--criterion":
            root = next(args)
        elif a in ("-h", "--help"):
            print(__doc__)
            return 0
        else:
            groups.append(a)
    if root is None:
        target = os.environ.get("CARGO_TARGET_DIR", "target")
        root = os.path.join(target, "criterion")
    groups = groups or GROUPS

    print("| group | bench | median time (95% CI) | throughput | vs baseline |")
    print("| --- | --- | --- | --- | --- |")
    checks = []
    missing = []
    for group in groups:
        rows = [load(root, group, b) for b in benches_of(root, group)]
        if not rows:
            missing.append(group)
            continue
        baselines = [r for r in rows if not r["bench"].startswith("aa")]
        base = baselines[0] if baselines else None
        for r in rows:
            med = r["median"]
            time = f"{fmt_time(med)} ({fmt_time(r['lo'])} – {fmt_time(r['hi'])})"
            if r["bytes"]:
                gbs = r["bytes"] / med  # bytes per ns = GB/s
                if group in SEGMENT_GROUPS:
                    tput = f"{med:.1f} ns/segment ({gbs:.1f} GB/s)"
                else:
                    tput = f"{gbs:.2f} GB/s"
            else:
                tput = "–"
            if base is None:
                ratio = "–"
            elif r is base:
                ratio = "1.00 (baseline)"
            else:
                ratio = f"{med / base['median']:.2f}"
            print(f"| {group} | {r['bench']} | {time} | {tput} | {ratio} |")
        if group == "zc_insert" and base is not None:
            aa = next((r for r in rows if r["bench"] == "aa"), None)
            if aa is not None:
                ratio = aa["median"] / base["median"]
                checks.append(
                    f"zc_insert/aa: {aa['median']:.1f} ns/segment "
                    f"(target < {ZC_MAX_NS:g} ns: "
                    f"{'met' if aa['median'] < ZC_MAX_NS else 'MISSED'}); "
                    f"{ratio:.2f} × {base['bench']} "
                    f"(target ≤ {ZC_MAX_RATIO:.2f}: "
                    f"{'met' if ratio <= ZC_MAX_RATIO else 'MISSED'})"
                )
    print()
    print(
        "Times are criterion medians per iteration; GB/s = 10^9 bytes/s. "
        "Ratio = median / median of the group's baseline (the non-`aa` bench)."
    )
    for c in checks:
        print(f"Targets: {c}")
    print(f"Machine: nproc = {nproc()}, CPU: {cpu_model()}")
    if missing:
        print(
            f"No results for: {', '.join(missing)} (under {root}); "
            "run `cargo bench -p aa-runtime` first.",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
