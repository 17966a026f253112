#!/bin/sh
# cpu_vs_ort.sh - inferlab's CPU engine against ONNX Runtime on the same machine, in the same runs.
#
# For each model, two `inferlab bench` runs (single-stream, trials interleaved A B A B):
#   run A: inferlab -O0 and -O2 (heuristic kernel choice) and ONNX Runtime on the original model;
#   run B: inferlab -O2 with `--tactics timed` (each node's kernel timed at plan time, choices in a
#          timing cache shared by the runs) and ONNX Runtime again,
# at every batch and thread count asked for. Each inferlab figure is compared with the ONNX
# Runtime figure of its own run. The results go into the database (experiment names
# "cpu-vs-ort heuristic" / "cpu-vs-ort timed") and a markdown table with the ratios and their
# geometric means is written from it (docs/cpu_speed.md explains how to read it). Accuracy and
# agreement (which bench measures after the timing) use 8 samples only: this script is about
# speed, and agreement is checked by the tests. A model whose input has a fixed batch (the
# tiny_* exports, fmnist_teacher) is measured at that batch only.
#
# usage: bench/cpu_vs_ort.sh [MODEL.onnx ...]
#   no models: tests/data/fmnist_teacher.onnx and the networks of bench/models: torchvision's
#   SqueezeNet 1.1, MobileNetV2, ShuffleNetV2 x0.5, ResNet-18, ResNet-50, EfficientNet-B0 and a
#   ViT-tiny and BERT-mini (seq 128) from transformers, exported by tools/export_models.py on the
#   GPU machine and kept as skeletons that tools/fill_weights.py fills with seeded random weights
#   of the exported statistics (speed does not depend on the values; see bench/models/README.md)
# environment (defaults in brackets):
#   BIN [build/inferlab]  DB [cpu_vs_ort.db]  TABLE [docs/cpu_speed_table.md]  WORK [a temp dir]
#   BATCHES [1,8]  THREADS [1,2]  TRIALS [3]  MIN_SECONDS [0.5]  MIN_QUERIES [5]
#   TASKSET: a CPU list ("0,1") to pin every process to (the GPU machine's 16 cores: 2 of them)
#   WAIT [auto]: bench's --wait for every run (spin: OpenMP threads busy-wait, as the demo measures;
#     auto lets bench choose by the machine's load, which on a busy machine means passive)
#   RUNS [A,B]: which runs to make per model (A: O0, O2 and ORT; B: O2 timed and ORT)
#   TABLE_ONLY=1: only redraw the table from DB (MACHINE: the measuring machine's description, when
#     the table is drawn elsewhere)
set -eu
cd "$(dirname "$0")/.."
BIN=${BIN:-build/inferlab}
DB=${DB:-cpu_vs_ort.db}
TABLE=${TABLE:-docs/cpu_speed_table.md}
BATCHES=${BATCHES:-1,8}
THREADS=${THREADS:-1,2}
TRIALS=${TRIALS:-3}
MIN_SECONDS=${MIN_SECONDS:-0.5}
MIN_QUERIES=${MIN_QUERIES:-5}
WAIT=${WAIT:-auto}
RUNS=${RUNS:-A,B}
PY=${PY:-/usr/bin/python3}
PIN=""
[ -n "${TASKSET:-}" ] && PIN="taskset -c $TASKSET"

if [ "${TABLE_ONLY:-0}" != 1 ]; then
    [ -x "$BIN" ] || { echo "cpu_vs_ort: $BIN not built (make)" >&2; exit 1; }
    WORK=${WORK:-$(mktemp -d /tmp/cpu_vs_ort.XXXXXX)}
    mkdir -p "$WORK"
    if [ $# -eq 0 ]; then
        set -- tests/data/fmnist_teacher.onnx
        for k in bench/models/*.onnx; do
            [ -f "$k" ] || continue
            f="$WORK/$(basename "$k")"
            [ -f "$f" ] || "$PY" tools/fill_weights.py "$k" "$f"
            set -- "$@" "$f"
        done
    fi
    # the model's fixed batch (its first input's first dim), empty when symbolic
    fixed_batch() {
        "$PY" -c 'import onnx, sys
d = onnx.load(sys.argv[1], load_external_data=False).graph.input[0].type.tensor_type.shape.dim
print(d[0].dim_value if len(d) and d[0].HasField("dim_value") else "")' "$1"
    }
    for m in "$@"; do
        fb=$(fixed_batch "$m")
        batches=${fb:-$BATCHES}
        echo "== $m (batch $batches)" >&2
        cat >"$WORK/a.yaml" <<EOF
name: cpu-vs-ort heuristic
scenario: single-stream
accuracy_samples: 8
batch: [$batches]
threads: [$THREADS]
variants:
  - model: "$m"
    pipeline: [O0, O2]
  - model: "$m"
    engine: onnxruntime
EOF
        sed -e 's/^name: .*/name: cpu-vs-ort timed/' -e 's/pipeline: \[O0, O2\]/pipeline: O2/' "$WORK/a.yaml" >"$WORK/b.yaml"
        common="--db $DB --cache $WORK/cache --trials $TRIALS --min-seconds $MIN_SECONDS --min-queries $MIN_QUERIES --wait $WAIT --quiet"
        case ",$RUNS," in *,A,*)
            # shellcheck disable=SC2086
            $PIN "$BIN" bench --experiment "$WORK/a.yaml" $common ;;
        esac
        case ",$RUNS," in *,B,*)
            # shellcheck disable=SC2086
            $PIN "$BIN" bench --experiment "$WORK/b.yaml" $common --tactics timed --timing-cache "$WORK/timing.cache" ;;
        esac
    done
fi

DB="$DB" TABLE="$TABLE" "$PY" - <<'EOF'
# The table: per model, batch and threads, the latest run of each variant.
import math, os, sqlite3, platform
db = sqlite3.connect(f"file:{os.environ['DB']}?mode=ro", uri=True)
rows = db.execute("""SELECT model, batch, threads, engine, pipeline, experiment, latency_p50_ms, valid, run_id
                     FROM results WHERE experiment LIKE 'cpu-vs-ort %' AND scenario = 'single-stream'
                     ORDER BY run_id""").fetchall()
cell = {}
for model, batch, threads, engine, pipe, exp, p50, valid, rid in rows:
    kind = exp.split()[-1]  # heuristic | timed
    col = ("ort-" + kind) if engine == "onnxruntime" else ("O0" if pipe == "O0" else ("O2" if kind == "heuristic" else "O2t"))
    cell[(model, batch, threads, col)] = (p50, valid)  # later runs win
keys = sorted({k[:3] for k in cell}, key=lambda k: (k[0], k[1], k[2]))
def get(k, c):
    v = cell.get(k + (c,))
    return v if v and v[0] else None
def ms(v):
    return "-" if not v else f"{v[0]:.3f}{'' if v[1] else '*'}"
def ratio(a, b):
    return a[0] / b[0] if a and b else None
cpu = "?"
for line in open("/proc/cpuinfo"):
    if line.startswith("model name"):
        cpu = line.split(":", 1)[1].strip(); break
cpu = f"{cpu}, {os.cpu_count()} cores visible, {platform.system()} {platform.release()}"
cpu = os.environ.get("MACHINE") or cpu  # TABLE_ONLY on another machine than the one measured
out = ["| model | batch | threads | inferlab O0 ms | O2 ms | O2 timed ms | ORT ms (run A) | ORT ms (run B) | O2 / ORT | O2 timed / ORT | O0 / O2 |",
       "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
logs = {"O2": [], "O2t": [], "fuse": []}
for k in keys:
    o0, o2, o2t, oa, ob = (get(k, c) for c in ("O0", "O2", "O2t", "ort-heuristic", "ort-timed"))
    r2, r2t, rf = ratio(o2, oa), ratio(o2t, ob), ratio(o0, o2)
    for name, r in (("O2", r2), ("O2t", r2t), ("fuse", rf)):
        if r: logs[name].append(math.log(r))
    f = lambda r: "-" if r is None else f"{r:.2f}x"
    out.append(f"| {k[0]} | {k[1]} | {k[2]} | {ms(o0)} | {ms(o2)} | {ms(o2t)} | {ms(oa)} | {ms(ob)} | {f(r2)} | {f(r2t)} | {f(rf)} |")
g = lambda l: "-" if not l else f"{math.exp(sum(l) / len(l)):.2f}x"
out.append(f"| **geometric mean** | | | | | | | | **{g(logs['O2'])}** | **{g(logs['O2t'])}** | **{g(logs['fuse'])}** |")
head = (f"<!-- written by bench/cpu_vs_ort.sh from {os.path.basename(os.environ['DB'])}; do not edit -->\n"
        f"Single-stream p50 latency per query (ms); ratios below 1.00x mean inferlab is faster than ONNX Runtime. "
        f"Machine: {cpu}. "
        f"`*`: a run bench marked INVALID (its trials disagreed or fell short).\n\n")
with open(os.environ["TABLE"], "w") as fh:
    fh.write(head + "\n".join(out) + "\n")
print("\n".join(out))
EOF
