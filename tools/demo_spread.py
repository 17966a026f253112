#!/usr/bin/env python3
"""demo_spread.py - how much `make demo`'s figures move between runs.

  tools/demo_spread.py RUN1.db RUN2.db RUN3.db ...   (one results.db per `make demo` run)

For every measurement the runs share (variant, engine, backend, scenario, batch) it prints, as a
Markdown table, each run's p50 latency (for the server scenario: the maximum QPS found) with the
lowest and highest and the spread (max - min) / median, and how many of the runs the harness
itself marked valid. tools/demo_stability.sh runs the demo N times and calls this.
"""
import sqlite3
import statistics
import sys


def rows(path):
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    out = {}
    for r in con.execute("SELECT variant, engine, backend, scenario, batch, lat_p50_ms, max_qps, valid,"
                         " load_avg1, others_running FROM runs ORDER BY id"):
        out[tuple(r[:5])] = r[5:]
    con.close()
    return out


def main(paths):
    if len(paths) < 2:
        sys.exit("usage: demo_spread.py RUN1.db RUN2.db [RUN3.db ...]")
    runs = [rows(p) for p in paths]
    keys = [k for k in runs[0] if all(k in r for r in runs[1:])]
    print("| variant | engine | scenario | batch | figure | " + " | ".join(f"run {i + 1}" for i in range(len(runs)))
          + " | spread | valid |")
    print("|---|---|---|---|---|" + "---|" * len(runs) + "---|---|")
    spreads = []
    for k in keys:
        server = k[3] == "server"
        vals = [r[k][1] if server else r[k][0] for r in runs]
        if any(v is None for v in vals):
            continue
        med = statistics.median(vals)
        spread = (max(vals) - min(vals)) / med if med else float("nan")
        spreads.append(spread)
        valid = sum(1 for r in runs if r[k][2])
        fig = "max QPS" if server else "p50 ms"
        fmt = (lambda v: f"{v:.0f}") if server else (lambda v: f"{v:.3f}")
        print(f"| {k[0]} | {k[1]} {k[2]} | {k[3]} | {k[4]} | {fig} | " + " | ".join(fmt(v) for v in vals)
              + f" | {100 * spread:.0f}% | {valid}/{len(runs)} |")
    if spreads:
        print(f"\n{len(spreads)} measurements; spread between runs: median {100 * statistics.median(spreads):.0f}%,"
              f" largest {100 * max(spreads):.0f}%")


if __name__ == "__main__":
    main(sys.argv[1:])
