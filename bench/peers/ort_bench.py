#!/usr/bin/env python3
"""ort_bench.py - the ONNX Runtime peer of `inferlab bench`, on Python's onnxruntime package.

The same peer as ort_bench.js (same protocol, same scheduling, same session options) for machines
that have Python's onnxruntime but not Node's onnxruntime-node (the GPU machine). bench/peers.c
picks this one when Node or node_modules/onnxruntime-node is missing, or when
INFERLAB_ORT_PEER=py. One invocation is one measurement; one JSON object on stdout:

  {"engine": "onnxruntime", "version": "1.x", "latencies_ms": [...], "seconds": s, "samples": n,
   "peak_host_bytes": b, "peak_device_bytes": null}      or {"error": "..."} and exit 1.

  python3 ort_bench.py --model M.onnx --threads T --batch B --device cpu --input NAME=FILE.npy ...
         --scenario S --warmup N --min-seconds S --min-queries N --max-queries N --qps Q --spq K --seed S
  python3 ort_bench.py --model M.onnx --threads T --batch B --input ... --eval-in X.npy --eval-out Y.npy

--device cuda uses the CUDA execution provider when this onnxruntime build has it (the plain
onnxruntime package does not: the run then fails, it is not measured on the CPU instead).
"""
import json
import math
import resource
import sys
import time

from peer_common import eval_batches, eval_inputs, fail, peer_parser, warm_up


def rng(seed):
    """xorshift64* as in engine/tensor.c and ort_bench.js: the same arrivals for a seed."""
    m = (1 << 64) - 1
    s = (seed * 0x9E3779B97F4A7C15 + 7) & m or 0x1234567

    def next_u():
        nonlocal s
        s ^= s >> 12
        s = (s ^ (s << 25)) & m
        s ^= s >> 27
        return (((s * 0x2545F4914F6CDD1D) & m) >> 11) / 9007199254740992
    return next_u


def sleep_until(t):
    left = t - time.perf_counter()
    if left > 0.002:
        time.sleep(left - 0.001)
    while time.perf_counter() < t:  # spin the last stretch: sleeps are coarse
        pass


def measure(a, run):
    spq = a.spq if a.scenario == "multi-stream" else a.batch
    runs = math.ceil(spq / a.batch)

    def query():
        for _ in range(runs):
            run()
    warm_up(a, query)
    lat = []
    start = end = time.perf_counter()
    if a.scenario != "server":
        while True:
            t0 = time.perf_counter()
            query()
            end = time.perf_counter()
            lat.append((end - t0) * 1e3)
            if a.max_queries > 0 and len(lat) >= a.max_queries:
                break
            if len(lat) >= a.min_queries and end - start >= a.min_seconds:
                break
    else:
        if not a.qps > 0:
            fail("server scenario: --qps must be > 0")
        u = rng(a.seed)
        give_up = start + 3 * max(a.min_seconds, 0.2)
        arrival = start
        while True:
            arrival += -math.log(1 - u()) / a.qps
            if time.perf_counter() < arrival:
                sleep_until(arrival)
            query()
            end = time.perf_counter()
            lat.append((end - arrival) * 1e3)
            if a.max_queries > 0 and len(lat) >= a.max_queries:
                break
            if len(lat) >= a.min_queries and arrival - start >= a.min_seconds:
                break
            if end > give_up:
                break
    return lat, end - start, len(lat) * spq


def main():
    ap = peer_parser()
    a = ap.parse_args()
    try:
        import numpy as np
        import onnxruntime as ort
    except ImportError as e:
        fail(f"the Python ONNX Runtime peer needs the onnxruntime and numpy packages: {e}")
    if a.device == "cpu":
        providers = ["CPUExecutionProvider"]
    elif a.device == "cuda":
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            fail(f"--device cuda: this onnxruntime {ort.__version__} has no CUDA execution provider "
                 f"({', '.join(ort.get_available_providers())})")
        providers = ["CUDAExecutionProvider"]
    else:
        fail(f"--device {a.device}: cpu or cuda")
    so = ort.SessionOptions()  # as ort_bench.js: a.threads intra-op, one inter-op, sequential, all opts
    so.intra_op_num_threads = max(1, a.threads)
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    try:
        sess = ort.InferenceSession(a.model, so, providers=providers)
    except Exception as e:
        fail(f"ONNX Runtime cannot load {a.model}: {e}")
    version = ort.__version__

    if a.eval_in:
        names = [i.name for i in sess.get_inputs()]
        xs = eval_inputs(a, names)
        outs = []
        for chunks, pad in eval_batches(xs, names, a.batch):
            y = sess.run(None, dict(zip(names, chunks)))[0]
            outs.append(np.asarray(y, dtype=np.float32)[:a.batch - pad])
        np.save(a.eval_out, np.concatenate(outs).astype(np.float32))
        print(json.dumps({"engine": "onnxruntime", "version": version}))
        return

    feeds = {}
    for spec in a.input:
        name, eq, path = spec.partition("=")
        if not eq:
            fail(f"--input expects NAME=FILE, got {spec}")
        feeds[name] = np.load(path)
    try:
        lat, seconds, samples = measure(a, lambda: sess.run(None, feeds))
    except Exception as e:
        fail(str(e))
    # the RSS high-water mark now, before anything else grows the process: the figure is running the model
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"engine": "onnxruntime", "version": version, "latencies_ms": lat, "seconds": seconds,
                      "samples": samples, "peak_host_bytes": peak, "peak_device_bytes": None}))


if __name__ == "__main__":
    main()
