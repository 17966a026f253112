#!/usr/bin/env python3
"""export_models.py - export PyTorch networks to ONNX test folders (for the GPU machine).

Each model is exported twice, with the legacy TorchScript exporter (opset 17) and with the
dynamo exporter (opset 18, weights as external data), into the ONNX backend-test layout:

    OUT/<name>_<exporter>/model.onnx  (+ model.onnx.data)
    OUT/<name>_<exporter>/test_data_set_0/input_K.pb, output_K.pb   (outputs from ONNX Runtime)

    OUT/<name>_<exporter>/torch_source.json  (builder + kwargs that rebuild the module)

so `inferlab check OUT` compares the engine with ONNX Runtime on every one, and the PyTorch peer
of `inferlab bench` (bench/peers/torch_bench.py) can rebuild the module from torch_source.json and
load its weights from model.onnx without onnx2torch. Weights are random (seeded): no network
access there, and correctness does not need trained weights.

usage: python3 tools/export_models.py OUT [--only a,b] [--small] [--exporters legacy,dynamo]
                                         [--skeleton DIR]
  --small: only the small variants meant for tests/data (a few MB in all)
  --skeleton DIR: also write DIR/<name>.onnx for each legacy export with its large float weights
      left out (their mean, std, min and max kept in the metadata key inferlab.skeleton), a few
      KB each: the graphs travel back from the GPU machine into bench/models/, and
      tools/fill_weights.py turns them into runnable models with seeded random weights of the
      same statistics (what speed measurements need; outputs are not compared against these).
"""
import argparse
import json
import os
import sys
import time
import traceback

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import numpy_helper


def torchvision_model(name, **kw):
    import torchvision
    return getattr(torchvision.models, name)(weights=None, **kw)


def bert(layers, hidden, heads, inter, vocab=1000):
    from transformers import BertConfig, BertModel
    cfg = BertConfig(vocab_size=vocab, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                     intermediate_size=inter, max_position_embeddings=128, attn_implementation="eager")
    m = BertModel(cfg)

    class Wrap(torch.nn.Module):  # plain tensors in and out, as a deployed encoder has
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids, attention_mask, token_type_ids):
            o = self.m(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return o.last_hidden_state, o.pooler_output
    return Wrap(m)


def bert_inputs(batch=2, seq=16, vocab=1000):
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, vocab, (batch, seq), generator=g)
    mask = torch.ones(batch, seq, dtype=torch.int64)
    mask[1, seq // 2:] = 0  # padding in the second row: the mask must matter
    tt = torch.zeros(batch, seq, dtype=torch.int64)
    return (ids, mask, tt), ["input_ids", "attention_mask", "token_type_ids"], ["last_hidden_state", "pooler_output"]


def hf_vit(hidden, layers, heads, inter, image=224, patch=16, classes=1000):
    """A ViT from transformers (eager attention: plain MatMul/Softmax in the export)."""
    from transformers import ViTConfig, ViTForImageClassification
    cfg = ViTConfig(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                    intermediate_size=inter, image_size=image, patch_size=patch, num_labels=classes,
                    attn_implementation="eager")
    m = ViTForImageClassification(cfg)

    class Wrap(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, pixel_values):
            return self.m(pixel_values=pixel_values).logits
    return Wrap(m)


def image_inputs(batch=1, size=224, ch=3):
    g = torch.Generator().manual_seed(0)
    return (torch.randn(batch, ch, size, size, generator=g),), ["input"], ["logits"]


def tiny_vit():
    from torchvision.models.vision_transformer import VisionTransformer
    return VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=4, hidden_dim=64, mlp_dim=128,
                             num_classes=10)


# How to rebuild each network: a builder of BUILDERS and its keyword arguments. The same pair is
# written next to every export as torch_source.json, so the PyTorch peer of `inferlab bench`
# (bench/peers/torch_bench.py) can rebuild the module and load its weights from the ONNX file.
# name -> ((builder, kwargs), inputs builder, small?)
MODELS = {
    "resnet18": (("torchvision", {"name": "resnet18"}), image_inputs, False),
    "resnet50": (("torchvision", {"name": "resnet50"}), image_inputs, False),
    "mobilenet_v2": (("torchvision", {"name": "mobilenet_v2"}), image_inputs, False),
    "mobilenet_v3_small": (("torchvision", {"name": "mobilenet_v3_small"}), image_inputs, False),
    "efficientnet_b0": (("torchvision", {"name": "efficientnet_b0"}), image_inputs, False),
    "shufflenet_v2_x1_0": (("torchvision", {"name": "shufflenet_v2_x1_0"}), image_inputs, False),
    "squeezenet1_1": (("torchvision", {"name": "squeezenet1_1"}), image_inputs, False),
    "densenet121": (("torchvision", {"name": "densenet121"}), image_inputs, False),
    "regnet_y_400mf": (("torchvision", {"name": "regnet_y_400mf"}), image_inputs, False),
    "mnasnet0_5": (("torchvision", {"name": "mnasnet0_5"}), image_inputs, False),
    "vit_b_16": (("torchvision", {"name": "vit_b_16"}), image_inputs, False),
    "bert_base": (("bert", {"layers": 12, "hidden": 768, "heads": 12, "inter": 3072}), bert_inputs, False),
    # the CPU speed table's set (bench/cpu_vs_ort.sh; bench/models holds their skeletons)
    "shufflenet_v2_x0_5": (("torchvision", {"name": "shufflenet_v2_x0_5"}), image_inputs, False),
    "vit_tiny": (("hf_vit", {"hidden": 192, "layers": 12, "heads": 3, "inter": 768}), image_inputs, False),
    "bert_mini": (("bert", {"layers": 4, "hidden": 256, "heads": 4, "inter": 1024, "vocab": 30522}),
                  lambda: bert_inputs(2, 128, 30522), False),
    # small ones, kept under tests/data
    "tiny_mobilenet_v2": (("torchvision", {"name": "mobilenet_v2", "width_mult": 0.25, "num_classes": 10}),
                          lambda: image_inputs(1, 64), True),
    "tiny_resnet": (("tiny_resnet", {}), lambda: image_inputs(1, 32), True),
    "tiny_bert": (("bert", {"layers": 2, "hidden": 64, "heads": 4, "inter": 128}), bert_inputs, True),
    "tiny_vit": (("tiny_vit", {}), lambda: image_inputs(2, 32), True),
}


def _tiny_resnet():
    """torchvision's BasicBlock at 1/8 width: the ops of a ResNet (conv-bn-relu, strided
    downsample shortcut, maxpool, global pool, fc) in 0.2 M parameters."""
    from torchvision.models.resnet import BasicBlock
    nn = torch.nn

    def stage(cin, cout, stride):
        down = None
        if stride != 1 or cin != cout:
            down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        return BasicBlock(cin, cout, stride, down)
    return nn.Sequential(nn.Conv2d(3, 8, 7, 2, 3, bias=False), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(3, 2, 1),
                         stage(8, 8, 1), stage(8, 16, 2), stage(16, 32, 2), stage(32, 64, 2),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))


BUILDERS = {"torchvision": torchvision_model, "bert": bert, "hf_vit": hf_vit, "tiny_vit": tiny_vit,
            "tiny_resnet": _tiny_resnet}


def build(builder, kwargs):
    """The module a torch_source.json names (random weights; make_nondegenerate() is separate)."""
    if builder not in BUILDERS:
        raise KeyError("unknown builder '%s' (known: %s)" % (builder, ", ".join(sorted(BUILDERS))))
    return BUILDERS[builder](**kwargs)


def _version(mod):
    try:
        return __import__(mod).__version__
    except Exception:  # not installed: not needed by this builder
        return None


def write_torch_source(folder, name, exporter, builder, kwargs, in_names, out_names):
    """OUT/<name>_<exporter>/torch_source.json: how to rebuild the module that was exported.
    The weights are NOT in it: the PyTorch peer loads them from model.onnx's initializers."""
    src = {
        "format": "inferlab-torch-source/1",
        "model": name,
        "exporter": exporter,
        "opset": 17 if exporter == "legacy" else 18,
        "builder": builder,
        "kwargs": kwargs,
        "builders": "tools/export_models.py",
        "inputs": list(in_names),
        "outputs": list(out_names),
        "versions": {m: _version(m) for m in ("torch", "torchvision", "transformers", "onnx")},
        "weights": "model.onnx initializers",
    }
    path = os.path.join(folder, "torch_source.json")
    with open(path, "w") as f:
        json.dump(src, f, indent=1)
        f.write("\n")
    return path


def save_case(folder, model_path, inputs, in_names):
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(model_path, so, providers=["CPUExecutionProvider"])
    feeds = {}
    names = [i.name for i in sess.get_inputs()]
    for n, t in zip(names, inputs):
        feeds[n] = t.numpy()
    outs = sess.run(None, feeds)
    ds = os.path.join(folder, "test_data_set_0")
    os.makedirs(ds, exist_ok=True)
    for k, n in enumerate(names):
        with open(os.path.join(ds, "input_%d.pb" % k), "wb") as f:
            f.write(numpy_helper.from_array(feeds[n], n).SerializeToString())
    for k, (o, meta) in enumerate(zip(outs, sess.get_outputs())):
        with open(os.path.join(ds, "output_%d.pb" % k), "wb") as f:
            f.write(numpy_helper.from_array(np.asarray(o), meta.name).SerializeToString())
    return outs


def make_nondegenerate(m, mk_inputs):
    """Random-init networks can compute almost nothing: torchvision zero-inits ViT's head, and
    with BatchNorm's initial running stats deep CNNs shrink activations towards 1e-15, where
    any engine "matches" any reference. So: small random weights for all-zero Linear layers,
    and BatchNorm running statistics calibrated on a few random batches, as training would."""
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.Linear) and not mod.weight.abs().sum():
                torch.nn.init.normal_(mod.weight, std=0.02)
        if any(isinstance(x, torch.nn.modules.batchnorm._BatchNorm) for x in m.modules()):
            m.train()
            for x in m.modules():
                if isinstance(x, torch.nn.modules.batchnorm._BatchNorm):
                    x.momentum = None  # cumulative average over the calibration batches
            g = torch.Generator().manual_seed(1)
            for _ in range(4):
                inp, _, _ = mk_inputs()
                m(*[torch.randn(8, *t.shape[1:], generator=g) if t.is_floating_point() else t for t in inp])
    return m.eval()


def write_skeleton(path, out_path, keep=1024):
    """The model without its large float initializers: each keeps dims and type, and its
    statistics go into the metadata key inferlab.skeleton for tools/fill_weights.py."""
    m = onnx.load(path)
    spec = {}
    for t in m.graph.initializer:
        if t.data_type == onnx.TensorProto.FLOAT and int(np.prod(t.dims)) > keep:
            a = numpy_helper.to_array(t)
            spec[t.name] = [float(a.mean()), float(a.std()), float(a.min()), float(a.max())]
            t.ClearField("raw_data")
            t.ClearField("float_data")
    m.metadata_props.add(key="inferlab.skeleton", value=json.dumps(spec, sort_keys=True))
    onnx.save(m, out_path)


def export(name, exporter, out, skeleton=None):
    (builder, kwargs), mk_inputs, _ = MODELS[name]
    torch.manual_seed(0)
    m = make_nondegenerate(build(builder, kwargs), mk_inputs)
    inputs, in_names, out_names = mk_inputs()
    folder = os.path.join(out, "%s_%s" % (name, exporter))
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "model.onnx")
    dyn = {n: {0: "batch"} for n in in_names}
    with torch.no_grad():
        ref = m(*inputs)
    if exporter == "legacy":
        torch.onnx.export(m, inputs, path, input_names=in_names, output_names=out_names[:len(ref) if isinstance(ref, tuple) else 1],
                          opset_version=17, dynamic_axes=dyn, dynamo=False)
    else:
        torch.onnx.export(m, inputs, path, input_names=in_names, opset_version=18, dynamo=True, external_data=True)
    onnx.checker.check_model(path)  # a path: works for external data too
    outs = save_case(folder, path, inputs, in_names)
    # ORT against PyTorch, so a bad export is not blamed on inferlab
    ref = ref if isinstance(ref, tuple) else (ref,)
    err = max(float(np.max(np.abs(o - r.numpy()))) for o, r in zip(outs, ref))
    scale = max(float(np.max(np.abs(o))) for o in outs)
    write_torch_source(folder, name, exporter, builder, kwargs, in_names, out_names[:len(ref)])
    if skeleton and exporter == "legacy":
        os.makedirs(skeleton, exist_ok=True)
        write_skeleton(path, os.path.join(skeleton, name + ".onnx"))
    return folder, err, scale


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--only", default="")
    ap.add_argument("--small", action="store_true")
    ap.add_argument("--exporters", default="legacy,dynamo")
    ap.add_argument("--skeleton")
    a = ap.parse_args()
    names = [n for n in MODELS if (not a.only or n in a.only.split(",")) and (not a.small or MODELS[n][2])]
    ok = 0
    for n in names:
        for e in a.exporters.split(","):
            t0 = time.time()
            try:
                folder, err, scale = export(n, e, a.out, a.skeleton)
                print("exported %-28s %-7s max|out|=%.3g  ORT vs torch max|d|=%.2e  %.1fs%s"
                      % (n, e, scale, err, time.time() - t0, "  DEGENERATE" if scale < 1e-2 else ""), flush=True)
                ok += 1
            except Exception as ex:  # report and go on: one exporter failing must not hide the rest
                print("FAILED   %-28s %-7s %s: %s" % (n, e, type(ex).__name__, str(ex).splitlines()[0][:300]), flush=True)
                traceback.print_exc(limit=2, file=sys.stderr)
    print("%d exported" % ok)


if __name__ == "__main__":
    main()
