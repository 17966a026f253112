#!/usr/bin/env python3
"""ort_latency.py - ONNX Runtime's CPU latency on the same files and batch sizes as
bench/opt_latency.sh, for a peer column in the same run (GPU machine: onnxruntime is there).
usage: ort_latency.py THREADS REPEAT MODEL.onnx...   prints: model | batch 1 ms | batch 8 ms"""
import sys
import time

import numpy as np
import onnxruntime as ort

threads, repeat = int(sys.argv[1]), int(sys.argv[2])
print("| model | ORT batch 1 (ms) | ORT batch 8 (ms) |")
print("|---|---|---|")
for path in sys.argv[3:]:
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    row = "| %s" % path
    for batch in (1, 8):
        rng = np.random.default_rng(1)
        feeds = {}
        for i in s.get_inputs():
            shape = [batch if (d is None or isinstance(d, str)) and k == 0 else (d if isinstance(d, int) else 1)
                     for k, d in enumerate(i.shape)]
            if "int" in i.type:
                feeds[i.name] = rng.integers(0, 2, shape).astype(np.int64)
            else:
                feeds[i.name] = rng.uniform(-1, 1, shape).astype(np.float32)
        for _ in range(3):
            s.run(None, feeds)
        best = 1e9
        for _ in range(repeat):
            t0 = time.perf_counter()
            s.run(None, feeds)
            best = min(best, time.perf_counter() - t0)
        row += " | %.3f" % (best * 1e3)
    print(row + " |", flush=True)
