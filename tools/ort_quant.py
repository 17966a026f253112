#!/usr/bin/env python3
"""ort_quant.py OUTDIR - ONNX Runtime's own static INT8 quantization of the demo teacher (QDQ and
QOperator formats, per-channel weights, MinMax on 256 Fashion-MNIST test images), with ORT's
outputs on 32 further images and ORT's top-1 on the whole test set, for inferlab's agreement test."""
import gzip, json, os, sys
import numpy as np
import onnx, onnxruntime as ort
from onnx import numpy_helper
from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType, quantize_static)

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
fm = ".dev/fmnist/"
x = np.frombuffer(gzip.open(fm + "t10k-images-idx3-ubyte.gz").read()[16:], np.uint8).reshape(-1, 1, 28, 28)
x = x.astype(np.float32) / 255.0
y = np.frombuffer(gzip.open(fm + "t10k-labels-idx1-ubyte.gz").read()[8:], np.uint8)
src = "tests/data/fmnist_teacher.onnx"


class Reader(CalibrationDataReader):
    def __init__(self):
        self.i = 0

    def get_next(self):
        if self.i >= 256:
            return None
        self.i += 1
        return {"input": x[self.i - 1:self.i]}


def top1(path):
    s = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    ok = 0
    for i in range(len(x)):
        ok += int(np.argmax(s.run(None, {"input": x[i:i + 1]})[0]) == y[i])
    return ok / len(x)


res = {"onnxruntime": ort.__version__, "fp32_top1": top1(src)}
for fmt, qf in (("qdq", QuantFormat.QDQ), ("qop", QuantFormat.QOperator)):
    path = os.path.join(out, "fmnist_teacher_ort_%s.onnx" % fmt)
    quantize_static(src, path, Reader(), quant_format=qf, per_channel=True, activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8)
    res[fmt + "_top1"] = top1(path)
    s = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    for k in range(4):  # ONNX test-data layout: test_data_set_K/input_0.pb, output_0.pb
        d = os.path.join(out, "ort_%s_case" % fmt, "test_data_set_%d" % k)
        os.makedirs(d, exist_ok=True)
        xi = x[256 + k:257 + k]
        open(os.path.join(d, "input_0.pb"), "wb").write(numpy_helper.from_array(xi, "input").SerializeToString())
        yo = s.run(None, {"input": xi})[0]
        open(os.path.join(d, "output_0.pb"), "wb").write(numpy_helper.from_array(yo, "logits").SerializeToString())
    # all of images 256..1279, ORT's argmax each, for a top-1 agreement figure
    np.save(os.path.join(out, "ort_%s_argmax.npy" % fmt),
            np.array([np.argmax(s.run(None, {"input": x[i:i + 1]})[0]) for i in range(256, 1280)], np.int32))
    import shutil
    shutil.copy(path, os.path.join(out, "ort_%s_case" % fmt, "model.onnx"))
    ops = {}
    for n in onnx.load(path).graph.node:
        ops[n.op_type] = ops.get(n.op_type, 0) + 1
    res[fmt + "_ops"] = ops
print(json.dumps(res))
json.dump(res, open(os.path.join(out, "ort_quant.json"), "w"), indent=1)
