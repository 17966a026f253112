#!/usr/bin/env python3
"""torch_bench.py - the PyTorch peer of `inferlab bench` (the GPU machine).

Same protocol as ort_bench.js (see bench/peers.c and docs/bench.md): one invocation is one
measurement, one JSON object on stdout, engine='pytorch'. The ONNX model is converted to a
torch module with onnx2torch when that package is present; otherwise the run fails with a clear
message (nothing is faked). On --device cuda the inputs live on the GPU, every query ends with
torch.cuda.synchronize() so the latency covers the work, and peak_device_bytes is
torch.cuda.max_memory_allocated().

  python3 torch_bench.py --model M.onnx --threads T --batch B --device cpu|cuda --input NAME=X.npy ...
         --scenario S --warmup N --min-seconds S --min-queries N --max-queries N --qps Q --spq K --seed S
  python3 torch_bench.py ... --eval-in X.npy --eval-out Y.npy
"""
import argparse
import json
import math
import random
import resource
import sys
import time


def fail(msg):
    print(json.dumps({"error": str(msg)}))
    sys.exit(1)


def main():
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
    ap.add_argument("--eval-in")
    ap.add_argument("--eval-out")
    a = ap.parse_args()
    try:
        import numpy as np
        import torch
    except ImportError as e:
        fail(f"PyTorch peer needs torch and numpy: {e}")
    try:
        import onnx
        from onnx2torch import convert
    except ImportError as e:
        fail(f"PyTorch peer needs onnx and onnx2torch to load ONNX models: {e}")
    if a.device == "cuda" and not torch.cuda.is_available():
        fail("--device cuda but torch sees no GPU")
    torch.set_num_threads(max(1, a.threads))
    dev = torch.device(a.device)
    try:
        model = convert(onnx.load(a.model)).eval().to(dev)
    except Exception as e:  # an op onnx2torch does not convert: say which, do not fake a row
        fail(f"onnx2torch cannot convert {a.model}: {e}")
    sync = torch.cuda.synchronize if a.device == "cuda" else (lambda: None)

    if a.eval_in:
        x = np.load(a.eval_in).astype(np.float32)
        n, outs = x.shape[0], []
        with torch.inference_mode():
            for s in range(0, n, a.batch):
                chunk = x[s:s + a.batch]
                pad = a.batch - chunk.shape[0]  # pad the last batch like the C harness; drop its outputs
                if pad:
                    chunk = np.concatenate([chunk, np.repeat(chunk[-1:], pad, axis=0)])
                y = model(torch.from_numpy(chunk).to(dev))
                y = y[0] if isinstance(y, (tuple, list)) else y
                outs.append(y.float().cpu().numpy()[:a.batch - pad])
        np.save(a.eval_out, np.concatenate(outs).astype(np.float32))
        print(json.dumps({"engine": "pytorch", "version": torch.__version__}))
        return

    feeds = []
    for spec in a.input:
        name, _, path = spec.partition("=")
        feeds.append(torch.from_numpy(np.load(path)).to(dev))
    spq = a.spq if a.scenario == "multi-stream" else a.batch
    runs = math.ceil(spq / a.batch)

    def query():
        for _ in range(runs):
            model(*feeds)
        sync()

    if a.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    lat = []
    with torch.inference_mode():
        w0 = time.perf_counter()
        i = 0
        while i < a.warmup or (a.warmup > 0 and time.perf_counter() - w0 < 0.1):
            query()
            i += 1
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
            rng = random.Random(a.seed)
            give_up = start + 3 * max(a.min_seconds, 0.2)
            arrival = start
            while True:
                arrival += rng.expovariate(a.qps)
                while time.perf_counter() < arrival:
                    pass
                query()
                end = time.perf_counter()
                lat.append((end - arrival) * 1e3)
                if a.max_queries > 0 and len(lat) >= a.max_queries:
                    break
                if len(lat) >= a.min_queries and arrival - start >= a.min_seconds:
                    break
                if end > give_up:
                    break
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    dev_peak = torch.cuda.max_memory_allocated() if a.device == "cuda" else None
    print(json.dumps({"engine": "pytorch", "version": torch.__version__, "latencies_ms": lat,
                      "seconds": end - start, "samples": len(lat) * spq, "peak_host_bytes": peak,
                      "peak_device_bytes": dev_peak}))


if __name__ == "__main__":
    main()
