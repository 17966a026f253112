#!/bin/sh
# sparse24_gpu.sh - on the GPU machine: the first run of the cusparselt-2:4 kernel (2:4 weights
# on cuSPARSELt, engine/cuda/sparse24.c; written without a GPU, never run on one before this).
#  1. finds libcusparseLt.so.0 in PyTorch's wheel (site-packages/nvidia/cusparselt/lib) unless
#     INFERLAB_CUSPARSELT names it, and records the GPU and library;
#  2. runs the GPU suites: cuda-sparse24 (the kernel against the reference in fp16 and bf16),
#     sparse24 (the no-GPU half: says "accelerated" only where the library loads), cuda-ops;
#  3. makes an MLP of MatMul+Add+Relu layers and a final Gemm (transB 1), H x H weights, prunes it
#     2:4 (`inferlab prune --method nm`) and benches dense against 2:4 in one run (trials
#     interleaved), fp16 and bf16, batches 1 and 256, pipelines O0 and O2, per-node kernels
#     recorded (--profile); each product's cuSPARSELt-vs-cuBLAS timing (the kernel's own choice)
#     goes to decisions.log. The dense model's nodes run cuBLAS; the 2:4 model's run
#     cusparselt-2:4 only where it timed faster, so the ratio of the two is the kernel's gain.
# Everything lands in $OUT: env.txt, tests.log, decisions.log, bench.log, bench.db, models/.
#   OUT=dir [H=4096] [L=4] sh tools/sparse24_gpu.sh     (after `. tools/gpu_env.sh`, or IL and
#   IL_TEST set to the binaries; default build/inferlab and build/test_inferlab; PY: a python3
#   with numpy and onnx, default python3)
set -u
OUT=${OUT:-/tmp/sparse24_out}
H=${H:-4096}
L=${L:-4}
IL=${IL:-build/inferlab}
IL_TEST=${IL_TEST:-build/test_inferlab}
PY=${PY:-python3}
mkdir -p "$OUT/models"

if [ -z "${INFERLAB_CUSPARSELT:-}" ]; then
    LIB=$($PY -c '
import glob, os, site
dirs = site.getsitepackages() + [site.getusersitepackages()]
hits = [f for d in dirs for f in glob.glob(os.path.join(d, "nvidia", "cusparselt", "lib", "libcusparseLt.so*"))]
print(sorted(hits)[0] if hits else "")' 2>/dev/null)
    # the interpreter's own site-packages (above) is what finds PyTorch's wheel; a fixed
    # /usr/local/lib/python3*/dist-packages path found nothing on the GPU machine (session 9)
    [ -n "$LIB" ] && export INFERLAB_CUSPARSELT="$LIB"
fi
{
    echo "INFERLAB_CUSPARSELT=${INFERLAB_CUSPARSELT:-(not found: the loader's path is tried)}"
    nvidia-smi --query-gpu=name,compute_cap,driver_version --format=csv,noheader 2>&1
    $PY -c 'import torch; print("torch", torch.__version__, "cuSPARSELt", torch.backends.cusparselt.version())' 2>&1
    $IL ops | grep -i cusparselt
    date -u
} | tee "$OUT/env.txt"

IL_BIN=$IL $IL_TEST cuda-sparse24 sparse24 cuda-ops 2>&1 | tee "$OUT/tests.log" | tail -n 30

# the model: x [batch, H] -> L x (MatMul W [H, H] + Add b + Relu) -> Gemm (transB 1) [H/2, H]
$PY - "$OUT/models/mlp.onnx" "$H" "$L" <<'EOF'
import sys
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
path, h, layers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(1)
nodes, inits, x = [], [], "x"
for i in range(layers):
    w = (rng.standard_normal((h, h)) / np.sqrt(h)).astype(np.float32)
    b = (0.01 * rng.standard_normal(h)).astype(np.float32)
    inits += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(b, f"b{i}")]
    nodes += [helper.make_node("MatMul", [x, f"w{i}"], [f"m{i}"], name=f"mm{i}"),
              helper.make_node("Add", [f"m{i}", f"b{i}"], [f"a{i}"], name=f"add{i}"),
              helper.make_node("Relu", [f"a{i}"], [f"r{i}"], name=f"relu{i}")]
    x = f"r{i}"
wg = (rng.standard_normal((h // 2, h)) / np.sqrt(h)).astype(np.float32)
inits += [numpy_helper.from_array(wg, "wg"), numpy_helper.from_array(np.zeros(h // 2, np.float32), "bg")]
nodes.append(helper.make_node("Gemm", [x, "wg", "bg"], ["y"], name="gemm", transB=1))
g = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", h])],
                      [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", h // 2])], inits)
m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
m.ir_version = 8  # a newer onnx writes its own latest IR (14 on the GPU machine); inferlab reads 3 to 10
onnx.checker.check_model(m)
onnx.save(m, path)
EOF
$IL prune "$OUT/models/mlp.onnx" -o "$OUT/models/mlp_24.onnx" --method nm --nm 2:4 2>&1 | tee "$OUT/prune.log" | tail -n 3

INFERLAB_SPARSELT_LOG=1 $IL bench --model "$OUT/models/mlp.onnx,$OUT/models/mlp_24.onnx" --backend cuda \
    --precision fp16,bf16 --batch 1,256 --pipeline O0,O2 --dataset none --trials 3 --profile \
    --db "$OUT/bench.db" >"$OUT/bench.log" 2>"$OUT/decisions.log"
tail -n 60 "$OUT/bench.log"
grep -c "faster than cuBLAS, taken" "$OUT/decisions.log" | sed 's/$/ products taken by cusparselt-2:4/'
grep -c "not faster than cuBLAS" "$OUT/decisions.log" | sed 's/$/ products left to cuBLAS/'
