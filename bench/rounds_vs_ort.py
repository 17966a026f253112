#!/usr/bin/python3
"""rounds_vs_ort.py - inferlab binaries against ONNX Runtime in interleaved rounds, for a loaded
machine where `inferlab bench` marks most runs INVALID (its trials disagree by more than 10%).

Each round runs, one after the other, `BIN run PLAN --repeat N --json --wait passive` for every
binary given (the plan built by that binary with -O2 at the batch) and the ONNX Runtime peer
(bench/peers/ort_bench.js, onnxruntime-node) for N queries, on the same inputs (.npy files written
here: floats uniform in [-1, 1), integer inputs token ids below 1000, inputs named *mask* all
ones, *type* zeros). A figure is the median over the rounds of each round's p50 (and of its min);
ratios divide by ONNX Runtime's. The load average is printed: compare ratios, not times.
WAIT=spin (environment) runs inferlab with `--wait spin` instead, as ONNX Runtime's threads do:
the fair setting for two-thread rows on an otherwise idle machine.

A BIN may end in :O0 (or :O1, :O3): its plan built at that level instead, so that -O0 and -O2 of
one binary run in the same rounds (BIN:O0 BIN).

usage: bench/rounds_vs_ort.py MODEL.onnx BATCH THREADS ROUNDS N BIN[:On] [BIN[:On]...]
"""
import json, os, statistics, subprocess, sys, tempfile

import numpy as np
import onnx
import onnx.mapping

here = os.path.dirname(os.path.abspath(__file__))
model, batch, threads, rounds, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
bins = sys.argv[6:]
if not bins:
    sys.exit(__doc__)
work = tempfile.mkdtemp(prefix="rounds_vs_ort.")
rng = np.random.default_rng(1)
ins = []
for x in onnx.load(model, load_external_data=False).graph.input:
    t = x.type.tensor_type
    shape = [batch if i == 0 and not d.dim_value else d.dim_value for i, d in enumerate(t.shape.dim)]
    dt = onnx.mapping.TENSOR_TYPE_TO_NP_TYPE[t.elem_type]
    if np.issubdtype(dt, np.floating):
        a = rng.uniform(-1, 1, shape).astype(dt)
    elif "mask" in x.name:
        a = np.ones(shape, dt)
    elif "type" in x.name:
        a = np.zeros(shape, dt)
    else:
        a = rng.integers(0, 1000, shape).astype(dt)
    f = os.path.join(work, x.name.replace("/", "_") + ".npy")
    np.save(f, a)
    ins.append(f"{x.name}={f}")
wait = os.environ.get("WAIT", "passive")
env = dict(os.environ, OMP_WAIT_POLICY="passive") if wait == "passive" else dict(os.environ)
plans = []
for i, b in enumerate(bins):
    p = os.path.join(work, f"{i}.plan")
    exe, _, level = b.partition(":")
    subprocess.run([exe, "build", model, "-" + (level or "O2"), "--batch", str(batch), "-o", p, "--quiet"], check=True)
    plans.append(p)
res = {k: [] for k in bins + ["ort"]}
for r in range(rounds):
    for b, p in zip(bins, plans):
        cmd = [b.partition(":")[0], "run", p, "--threads", str(threads), "--repeat", str(n), "--json", "--wait", wait]
        for x in ins:
            cmd += ["--input", x]
        o = json.loads(subprocess.run(cmd, capture_output=True, text=True, env=env, check=True).stdout)
        res[b].append((o["time_ms"]["min"], o["time_ms"]["p50"]))
    cmd = ["node", os.path.join(here, "peers", "ort_bench.js"), "--model", model, "--threads", str(threads),
           "--batch", str(batch), "--scenario", "single-stream", "--warmup", "5", "--min-seconds", "0",
           "--min-queries", str(n), "--max-queries", str(n)]
    for x in ins:
        cmd += ["--input", x]
    o = json.loads(subprocess.run(cmd, capture_output=True, text=True, env=env, check=True).stdout)
    lat = sorted(o["latencies_ms"])
    res["ort"].append((lat[0], lat[len(lat) // 2]))
omin = statistics.median(x[0] for x in res["ort"])
op50 = statistics.median(x[1] for x in res["ort"])
print(f"{os.path.basename(model)} batch {batch} threads {threads} wait {wait}: {rounds} rounds of {n}, load {os.getloadavg()[0]:.1f}")
for k in bins + ["ort"]:
    mn = statistics.median(x[0] for x in res[k])
    p5 = statistics.median(x[1] for x in res[k])
    print(f"  {k:36s} p50 {p5:9.3f} ms (min {mn:9.3f})  / ORT: p50 {p5 / op50:.3f}x (min {mn / omin:.3f}x)")
for f in os.listdir(work):
    os.remove(os.path.join(work, f))
os.rmdir(work)
