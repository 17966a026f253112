"""peer_common.py - what the Python peers (ort_bench.py, torch_bench.py) share: the command
line of the peer protocol (bench/peers.c passes the same flags to every peer) and the JSON error
reply. Imported from the scripts' own directory, which Python puts first on sys.path."""
import argparse
import json
import statistics
import sys
import time


def fail(msg):
    print(json.dumps({"error": str(msg)}))
    sys.exit(1)


def peer_parser():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--input", action="append", default=[])
    ap.add_argument("--scenario", default=None)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--min-seconds", type=float, default=1.0)
    ap.add_argument("--min-queries", type=int, default=64)
    ap.add_argument("--max-queries", type=int, default=0)
    ap.add_argument("--qps", type=float, default=50.0)
    ap.add_argument("--spq", type=int, default=8)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--eval-in", action="append", default=[])
    ap.add_argument("--eval-out")
    return ap


def eval_inputs(a, names):
    """The --eval-in arrays by input name: "NAME=FILE" per input, or one FILE for input 0."""
    import numpy as np
    xs = {}
    for spec in a.eval_in:
        name, eq, path = spec.partition("=")
        if not eq:
            name, path = names[0], spec
        xs[name] = np.load(path)
    missing = [n for n in names if n not in xs]
    if missing:
        fail(f"--eval-in: no file for input(s) {', '.join(missing)}")
    return xs


def eval_batches(xs, names, batch):
    """The evaluation set in batches: yields ([array per input, in names' order], pad). The last
    batch is padded with its last sample (pad of them) as the C harness does; the caller drops
    the outputs of the padding. Every input must hold the same number of samples."""
    import numpy as np
    n = xs[names[0]].shape[0]
    for name in names[1:]:
        if xs[name].shape[0] != n:
            fail(f"--eval-in: input {name} has {xs[name].shape[0]} samples, {names[0]} has {n}")
    for s in range(0, n, batch):
        chunks = []
        pad = 0
        for name in names:
            chunk = xs[name][s:s + batch]
            pad = batch - chunk.shape[0]
            if pad:
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], pad, axis=0)])
            chunks.append(chunk)
        yield chunks, pad


def warm_up(a, query):
    """Warm-up until steady, as bench/scenario.c: at least --warmup queries and 0.1 s, then until
    the medians of the last two windows of 8 latencies are within 5%, at most 2 s."""
    if a.warmup <= 0:
        return
    w0 = time.perf_counter()
    ring = []
    i = 0
    while True:
        t0 = time.perf_counter()
        query()
        t1 = time.perf_counter()
        ring = (ring + [t1 - t0])[-16:]
        i += 1
        if i < a.warmup or t1 - w0 < 0.1 or len(ring) < 16:
            continue
        older, newer = statistics.median(ring[:8]), statistics.median(ring[8:])
        if abs(older - newer) <= 0.05 * newer or t1 - w0 >= 2.0:
            return
