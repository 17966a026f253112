#!/bin/sh
# demo_stability.sh - run `make demo`'s pipeline N times (default 3) and print how far its
# figures move between runs (tools/demo_spread.py): the README's stability table comes from it.
# Run it on a quiet machine; each run's load is in its database (load_avg1, others_running,
# cpu_busy_pct) and the harness marks a disturbed measurement INVALID.
#   tools/demo_stability.sh [N] [build/inferlab]      -> demo-stability/run*.db, spread.md (demo.sh clears demo/)
set -eu
cd "$(dirname "$0")/.."
N=${1:-3}
BIN=${2:-build/inferlab}
OUT=demo-stability
rm -rf "$OUT"
mkdir -p "$OUT"
i=1
while [ "$i" -le "$N" ]; do
    echo "demo_stability: run $i of $N ($(cut -d' ' -f1-3 /proc/loadavg) load)"
    ./tools/demo.sh "$BIN" > "$OUT/run$i.log" 2>&1 || { echo "demo_stability: run $i failed (see $OUT/run$i.log)" >&2; exit 1; }
    cp demo/results.db "$OUT/run$i.db"
    i=$((i + 1))
done
/usr/bin/python3 tools/demo_spread.py "$OUT"/run*.db | tee "$OUT/spread.md"
