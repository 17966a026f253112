#!/usr/bin/python3
"""conformance_scope.py - of the ONNX backend tests, which use only the ops issue #2 lists,
and how `inferlab check` did on those (reads the log tests/conformance.sh writes).
usage: tools/conformance_scope.py [build/conformance.log]"""
import os
import sys

import onnx

OPS = set("""Conv ConvTranspose MaxPool AveragePool GlobalAveragePool GlobalMaxPool BatchNormalization
InstanceNormalization LayerNormalization Gemm MatMul Einsum Add Sub Mul Div Mod Pow Sqrt Exp Log Abs Neg
Reciprocal Floor Ceil Round Sign Sin Cos Erf Relu LeakyRelu PRelu Elu Selu Celu Sigmoid HardSigmoid HardSwish
Mish Tanh Softplus Softsign ThresholdedRelu Shrink Clip Gelu Softmax LogSoftmax Hardmax ReduceMean ReduceSum
ReduceMax ReduceMin ReduceProd ReduceL1 ReduceL2 ReduceLogSum ReduceLogSumExp ReduceSumSquare ArgMax ArgMin
TopK CumSum Reshape Flatten Transpose Squeeze Unsqueeze Concat Split Slice Gather GatherElements GatherND
ScatterND ScatterElements Expand Tile Pad Resize Upsample DepthToSpace SpaceToDepth Trilu OneHot NonZero
Shape Size Cast CastLike Constant ConstantOfShape Range Where Equal Less Greater LessOrEqual GreaterOrEqual
And Or Not Xor IsNaN Min Max Mean Sum Identity Dropout""".split())

DATA = "/usr/share/libonnx-testdata/data"
log = sys.argv[1] if len(sys.argv) > 1 else "build/conformance.log"
result = {}
for line in open(log):
    p = line.split(None, 2)
    if len(p) >= 2 and p[0] in ("PASS", "FAIL", "SKIP"):
        result[p[1].rstrip(":")] = (p[0], line.strip())
for suite in ("node", "pytorch-converted", "pytorch-operator"):
    n = {"PASS": 0, "FAIL": 0, "SKIP": 0, "?": 0}
    inscope = 0
    for t in sorted(os.listdir(os.path.join(DATA, suite))):
        try:
            m = onnx.load(os.path.join(DATA, suite, t, "model.onnx"), load_external_data=False)
        except Exception:
            continue
        if not all(nd.op_type in OPS and nd.domain in ("", "ai.onnx") for nd in m.graph.node):
            continue
        inscope += 1
        st, line = result.get(t, ("?", ""))
        n[st] += 1
        if st in ("FAIL", "SKIP", "?"):
            print("  " + (line or "not run: " + t))
    print("%s: %d cases use only the listed ops: %d passed, %d failed, %d skipped" % (suite, inscope, n["PASS"], n["FAIL"], n["SKIP"]))
