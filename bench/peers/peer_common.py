"""peer_common.py - what the Python peers (ort_bench.py, torch_bench.py) share: the command
line of the peer protocol (bench/peers.c passes the same flags to every peer) and the JSON error
reply. Imported from the scripts' own directory, which Python puts first on sys.path."""
import argparse
import json
import sys


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
    ap.add_argument("--eval-in")
    ap.add_argument("--eval-out")
    return ap
