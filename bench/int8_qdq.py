#!/usr/bin/python3
"""int8_qdq.py - a minimal static QDQ quantizer, only for bench/int8_vs_fp32.sh: it writes the
same kind of model as ONNX Runtime's quantize_static (QDQ format, activations uint8 per tensor
from min/max calibration, weights int8 symmetric per output channel, biases int32 with scale
x_scale * w_scale, Relu left to the Q after it) so that inferlab and ONNX Runtime can be timed on
one model file. `inferlab quantize` is the real tool; this script exists so the benchmark does
not depend on it.

usage: int8_qdq.py FOLDED.onnx OUT.onnx BIN
  FOLDED.onnx: a float model with BatchNormalization folded (inferlab opt -p fold-constants,fold-bn)
  BIN: the inferlab binary, which runs the calibration (random inputs in [-1, 1), batch 4)
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto

# ops whose activation inputs and outputs get Q/DQ pairs; reshape-like ones and MaxPool keep
# their input's parameters on the output, as ONNX Runtime does
QUANT_OPS = {"Conv", "Gemm", "MatMul", "Add", "MaxPool", "Flatten", "Reshape", "GlobalAveragePool"}
SAME_SCALE = {"MaxPool", "Flatten", "Reshape"}


def main():
    src, dst, binary = sys.argv[1:4]
    m = onnx.load(src)
    g = m.graph
    inits = {t.name: t for t in g.initializer}
    consumers = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    producer = {o: n for n in g.node for o in n.output}

    # the activations to quantize: inputs of quantized ops, outputs unless a Relu/Clip reads them
    # (the Relu's own output is quantized instead: fuse-qdq folds it into the op)
    acts = []
    def want(t):
        if t and t not in inits and t not in acts:
            acts.append(t)
    for n in g.node:
        if n.op_type not in QUANT_OPS:
            continue
        for t in n.input[:2] if n.op_type in ("Conv", "Gemm", "MatMul") else n.input[:1] if n.op_type != "Add" else n.input:
            want(t)
        out = n.output[0]
        readers = consumers.get(out, [])
        if readers and all(r.op_type in ("Relu", "Clip") for r in readers):
            for r in readers:
                want(r.output[0])
        else:
            want(out)

    # calibration: run the float model with every such tensor as an output
    cal = onnx.ModelProto()
    cal.CopyFrom(m)
    del cal.graph.output[:]
    for t in acts:
        cal.graph.output.append(helper.make_empty_tensor_value_info(t))
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "cal.onnx")
        onnx.save(cal, path)
        subprocess.run([binary, "run", path, "--batch", "4", "--out", tmp, "--quiet"], check=True)
        ranges = {}
        for i, t in enumerate(acts):
            a = np.load(os.path.join(tmp, f"output_{i}.npy"))
            ranges[t] = (min(0.0, float(a.min())), max(0.0, float(a.max())))
    # reshape-like ops and pools: the output's parameters are the input's
    for n in g.node:
        if n.op_type in SAME_SCALE and n.input[0] in ranges and n.output[0] in ranges:
            ranges[n.output[0]] = ranges[n.input[0]]

    new_nodes, new_inits = [], []
    def scalar(name, value, dtype):
        new_inits.append(numpy_helper.from_array(np.array(value, dtype=dtype), name))
        return name
    params = {}
    for t, (lo, hi) in ranges.items():
        s = (hi - lo) / 255.0 or 1.0
        z = int(np.clip(round(-lo / s), 0, 255))
        params[t] = (s, scalar(t + "_scale", s, np.float32), scalar(t + "_zp", z, np.uint8))
    outputs = {o.name for o in g.output}
    rename = {}
    for t in acts:  # t -> Q -> DQ; readers take the DQ's output (a graph output keeps its name)
        s, sn, zn = params[t]
        src_name = t + "_f" if t in outputs else t
        if t in outputs:
            rename[t] = src_name
        new_nodes.append((t, helper.make_node("QuantizeLinear", [src_name, sn, zn], [t + "_q"], name=t + "_Q")))
        new_nodes.append((t, helper.make_node("DequantizeLinear", [t + "_q", sn, zn], [t if t in outputs else t + "_dq"],
                                              name=t + "_DQ")))
    dq = {t: (t if t in outputs else t + "_dq") for t in acts}
    for n in g.node:
        for i, name in enumerate(n.input):
            if name in dq and name not in outputs:
                n.input[i] = dq[name]
        for i, name in enumerate(n.output):
            if name in rename:
                n.output[i] = rename[name]

    # weights int8 per output channel, biases int32
    for n in g.node:
        if n.op_type not in ("Conv", "Gemm", "MatMul") or len(n.input) < 2 or n.input[1] not in inits:
            continue
        x = n.input[0][:-3] if n.input[0].endswith("_dq") else n.input[0]
        if x not in params:
            continue
        w = numpy_helper.to_array(inits[n.input[1]]).astype(np.float64)
        trans_b = any(a.name == "transB" and a.i for a in n.attribute)
        axis = 0 if n.op_type == "Conv" or (n.op_type == "Gemm" and trans_b) else 1
        amax = np.abs(np.moveaxis(w, axis, 0).reshape(w.shape[axis], -1)).max(axis=1)
        ws = np.where(amax > 0, amax / 127.0, 1.0)
        shape = [1] * w.ndim
        shape[axis] = -1
        wq = np.clip(np.round(w / ws.reshape(shape)), -127, 127).astype(np.int8)
        wn = n.input[1]
        new_inits += [numpy_helper.from_array(wq, wn + "_q"), numpy_helper.from_array(ws.astype(np.float32), wn + "_s"),
                      numpy_helper.from_array(np.zeros(len(ws), np.int8), wn + "_z")]
        new_nodes.append((None, helper.make_node("DequantizeLinear", [wn + "_q", wn + "_s", wn + "_z"], [wn + "_dq"],
                                                 name=wn + "_DQ", axis=axis)))
        n.input[1] = wn + "_dq"
        if len(n.input) > 2 and n.input[2] in inits:
            bn = n.input[2]
            b = numpy_helper.to_array(inits[bn]).astype(np.float64).reshape(-1)
            bs = (params[x][0] * ws).astype(np.float32)
            bq = np.round(b / bs.astype(np.float64)).astype(np.int32)
            new_inits += [numpy_helper.from_array(bq, bn + "_q"), numpy_helper.from_array(bs, bn + "_s")]
            new_nodes.append((None, helper.make_node("DequantizeLinear", [bn + "_q", bn + "_s"], [bn + "_dq"],
                                                     name=bn + "_DQ", axis=0)))
            n.input[2] = bn + "_dq"

    # topological placement: each activation's Q/DQ right after its producer (or first for inputs)
    nodes = list(g.node)
    del g.node[:]
    for q in [q for t, q in new_nodes if t is None or t not in producer]:
        g.node.append(q)
    for n in nodes:
        g.node.append(n)
        for o in n.output:
            key = next((k for k, v in rename.items() if v == o), o)
            for t, q in new_nodes:
                if t == key:
                    g.node.append(q)
    used = {i for n in g.node for i in n.input}
    keep = [t for t in g.initializer if t.name in used]
    del g.initializer[:]
    g.initializer.extend(keep + [t for t in new_inits if t.name in used])
    for o in m.opset_import:
        if o.domain in ("", "ai.onnx") and o.version < 13:
            o.version = 13  # per-axis DequantizeLinear
    m.metadata_props.append(onnx.StringStringEntryProto(
        key="inferlab.quantize",
        value='{"method":"minmax","calib":"random:4","per_channel":true,"tool":"bench/int8_qdq.py"}'))
    onnx.checker.check_model(m)
    onnx.save(m, dst)


if __name__ == "__main__":
    main()
