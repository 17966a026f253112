#!/usr/bin/env python3
"""torch_bench.py - the PyTorch peer of `inferlab bench` (the GPU machine).

Same protocol as ort_bench.js / ort_bench.py (see bench/peers.c and docs/bench.md): one
invocation is one measurement, one JSON object on stdout, engine='pytorch'.

Where the torch module comes from, in this order:
  1. --torch-source FILE: rebuild the module that file names (builder + kwargs, written by
     tools/export_models.py next to each export) and load its weights FROM THE ONNX FILE;
  2. onnx2torch, when that package is installed: convert the ONNX graph;
  3. a torch_source.json next to the model: as 1.
otherwise the run fails with a message saying so (nothing is faked).

Loading the weights maps the ONNX initializers to the rebuilt module's state_dict keys: by name
(the legacy TorchScript exporter keeps 'fc.weight'; the dynamo exporter keeps fully qualified
names for most), then by the module each consuming node belongs to (legacy node names such as
'/layer1/layer1.0/conv1/Conv', or the dynamo exporter's pkg.torch.onnx.name_scopes metadata):
Conv weights whose BatchNorm the exporter folded in (BatchNorm then set to identity, its shift
taken from the Conv bias), MatMul weights stored transposed, Gemm, LayerNormalization, Gather on
an Embedding, Identity aliases of de-duplicated initializers. A key left unmatched is an error.
Before timing, the rebuilt (or converted) module and ONNX Runtime run the same inputs (their
first 8 samples) and must agree within 1e-3 (max abs difference); otherwise the run fails. FP32
is kept exact on the GPU (TF32 off), as the file's other engines compute.

On --device cuda the inputs live on the GPU, every query ends with torch.cuda.synchronize() so
the latency covers the work, and peak_device_bytes is torch.cuda.max_memory_allocated().
--precision fp32|tf32|fp16|bf16 (GPU only) sets the arithmetic after the FP32 check: tf32 turns
TF32 on, fp16/bf16 convert the module (module.half()) and float inputs, channels-last for
convolution networks; cudnn.benchmark is on. --graphs captures one query's forward pass as a CUDA
graph and replays it. The reply names the GPU, its compute capability and torch's CUDA/cuDNN.

  python3 torch_bench.py --model M.onnx --threads T --batch B --device cpu|cuda [--precision P] [--graphs]
         --input NAME=X.npy ...
         --scenario S --warmup N --min-seconds S --min-queries N --max-queries N --qps Q --spq K --seed S
         [--torch-source torch_source.json]
  python3 torch_bench.py ... --eval-in X.npy --eval-out Y.npy
  python3 torch_bench.py --self-test [tests/data]   (the weight mapping, without torch)
"""
import ast
import json
import math
import os
import random
import resource
import sys
import time

from peer_common import eval_batches, eval_inputs, fail, peer_parser, warm_up

TOLERANCE = 1e-3  # max abs difference allowed between the torch module and ONNX Runtime
VERIFY_SAMPLES = 8  # the check runs this many samples at most: ONNX Runtime on the CPU at batch 256
                    # of BERT-base would cost more than the measurement


def note(msg):
    print("torch_bench: " + msg, file=sys.stderr)


# ---------------------------------------------------------------- weight mapping (no torch here)

class Mod:
    """What the weight planner needs of one submodule: kind, child names in registration order,
    parameter (and BatchNorm running-stat) shapes, eps, whether it has a bias."""

    def __init__(self, kind, children=(), params=None, eps=1e-5, has_bias=False):
        self.kind, self.children, self.params = kind, list(children), dict(params or {})
        self.eps, self.has_bias = eps, has_bias


def _join(a, b):
    return a + "." + b if a else b


def describe_torch(module, torch):
    """{qualified name: Mod} of a torch module."""
    nn = torch.nn
    mods = {}
    for name, m in module.named_modules():
        if isinstance(m, nn.modules.conv._ConvNd):
            kind = "conv"
        elif isinstance(m, nn.modules.batchnorm._BatchNorm):
            kind = "bn"
        elif isinstance(m, nn.Linear):
            kind = "linear"
        elif isinstance(m, nn.LayerNorm):
            kind = "layernorm"
        elif isinstance(m, nn.Embedding):
            kind = "embedding"
        else:
            kind = "other"
        params = {k: tuple(v.shape) for k, v in m.named_parameters(recurse=False)}
        if kind == "bn" and m.running_mean is not None:
            params["running_mean"] = tuple(m.running_mean.shape)
            params["running_var"] = tuple(m.running_var.shape)
        mods[name] = Mod(kind, [n for n, _ in m.named_children()], params, float(getattr(m, "eps", 1e-5)),
                         getattr(m, "bias", None) is not None)
    return mods


def describe_onnx(model):
    """Initializer shapes, Identity aliases (the legacy exporter de-duplicates equal initializers
    and re-creates the others through Identity nodes named after the parameter), and the nodes
    with their module scope hints."""
    g = model.graph
    shapes = {i.name: tuple(i.dims) for i in g.initializer}
    alias = {}
    for n in g.node:
        if n.op_type == "Identity" and n.input and n.input[0] in shapes:
            root = alias.get(n.input[0], n.input[0])
            alias[n.output[0]] = root
            shapes[n.output[0]] = shapes[root]
    nodes = []
    for n in g.node:
        scopes = None
        for p in getattr(n, "metadata_props", ()):  # onnx >= 1.16; the dynamo exporter writes it
            if p.key == "pkg.torch.onnx.name_scopes":
                try:
                    scopes = list(ast.literal_eval(p.value))
                except (ValueError, SyntaxError):
                    scopes = None
        attrs = {a.name: a.i for a in n.attribute if a.name in ("transA", "transB")}
        nodes.append({"op": n.op_type, "name": n.name, "inputs": list(n.input), "scopes": scopes, "attrs": attrs})
    return {"shapes": shapes, "alias": alias, "nodes": nodes}


def scope_module(node, mods):
    """The qualified name of the module a node was exported from, or None."""
    if node.get("scopes"):
        for s in reversed(node["scopes"][:-1]):  # the last entry names the op itself
            if s in mods:
                return s
    name = node.get("name") or ""
    if not name.startswith("/"):
        return None
    # legacy: '/features/features.0/features.0.0/Conv'. Each scope is the module's name from its
    # last non-numeric atom on ('layer1.0', 'conv1', 'layer.0'), and containers that are never
    # called (ModuleList) have no scope of their own: resolve each relative to the last one,
    # longest suffix first.
    cur = ""
    for comp in name.split("/")[1:-1]:
        atoms = comp.split(".")
        for i in range(len(atoms)):
            cand = _join(cur, ".".join(atoms[i:]))
            if cand in mods:
                cur = cand
                break
        else:
            return None
    return cur


def _next_bn(mn, mods):
    """The BatchNorm registered right after a conv in the same parent (conv1 -> bn1,
    downsample.0 -> downsample.1, Conv2dNormActivation's 0 -> 1), or None."""
    parent, _, child = mn.rpartition(".")
    sib = mods[parent].children if parent in mods else []
    if child in sib:
        k = sib.index(child)
        if k + 1 < len(sib) and mods[_join(parent, sib[k + 1])].kind == "bn":
            return _join(parent, sib[k + 1])
    return None


def _numel(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def plan_weights(graph, mods):
    """Map state_dict keys to initializers: {key: (how, arg)} with how in copy (arg: initializer),
    T (transposed), reshape, zeros, ones, sqrt1eps (arg: eps); and the keys left unmatched."""
    shapes, alias, nodes = graph["shapes"], graph["alias"], graph["nodes"]
    src = lambda x: alias.get(x, x)
    required = {}
    for mn, m in mods.items():
        for p, shp in m.params.items():
            required[_join(mn, p)] = tuple(shp)
    plan = {}

    def put(key, how, arg, shape, force=False):
        if key not in required or (key in plan and not force):
            return False
        want = required[key]
        if how == "T":
            ok = len(shape) == 2 and tuple(reversed(shape)) == want
        elif how == "reshape":
            ok = _numel(shape) == _numel(want)
        elif how in ("copy",):
            ok = tuple(shape) == want
        else:
            ok = True
        if ok:
            plan[key] = (how, arg)
        return ok

    # 1. names the exporter kept (legacy: 'fc.weight', 'm.encoder.layer.0.attention.self.query.bias'
    #    through Identity aliases; dynamo: fully qualified names)
    for name, shp in shapes.items():
        put(name, "copy", src(name), shp)
    # 2. by the module each consuming node belongs to
    bn_nodes = set()
    for nd in nodes:
        if nd["op"] == "BatchNormalization":
            mn = scope_module(nd, mods)
            if mn is not None:
                bn_nodes.add(mn)
    for nd in nodes:
        op, ins = nd["op"], nd["inputs"]
        if not any(x in shapes for x in ins):
            continue
        mn = scope_module(nd, mods)
        kind = mods[mn].kind if mn in mods else None
        if op == "Conv" and len(ins) > 1 and ins[1] in shapes:
            if kind != "conv":  # no scope (dynamo without metadata): the weight's own name
                w = src(ins[1])
                mn = w[:-len(".weight")] if w.endswith(".weight") else None
                if mn not in mods or mods[mn].kind != "conv":
                    continue
            put(_join(mn, "weight"), "copy", src(ins[1]), shapes[ins[1]], force=True)
            b = ins[2] if len(ins) > 2 and ins[2] in shapes else None
            bn = _next_bn(mn, mods)
            fused = (bn is not None and bn not in bn_nodes
                     and _join(bn, "running_mean") not in plan and _join(bn, "running_var") not in plan)
            if fused:  # the exporter folded the BatchNorm into this conv: BN becomes identity + shift
                if mods[mn].has_bias:
                    put(_join(mn, "bias"), "zeros", None, ())
                put(_join(bn, "weight"), "sqrt1eps", mods[bn].eps, ())
                if b is not None:
                    put(_join(bn, "bias"), "copy", src(b), shapes[b], force=True)
                else:
                    put(_join(bn, "bias"), "zeros", None, ())
                put(_join(bn, "running_mean"), "zeros", None, ())
                put(_join(bn, "running_var"), "ones", None, ())
            elif b is not None:
                put(_join(mn, "bias"), "copy", src(b), shapes[b])
        elif op == "BatchNormalization" and kind == "bn":
            for k, p in ((1, "weight"), (2, "bias"), (3, "running_mean"), (4, "running_var")):
                if len(ins) > k and ins[k] in shapes:
                    put(_join(mn, p), "copy", src(ins[k]), shapes[ins[k]])
        elif op == "Gemm" and kind == "linear":
            if len(ins) > 1 and ins[1] in shapes:
                put(_join(mn, "weight"), "copy" if nd["attrs"].get("transB", 0) else "T", src(ins[1]), shapes[ins[1]])
            if len(ins) > 2 and ins[2] in shapes:
                put(_join(mn, "bias"), "reshape", src(ins[2]), shapes[ins[2]])
        elif op == "MatMul" and kind == "linear" and len(ins) > 1 and ins[1] in shapes:
            put(_join(mn, "weight"), "T", src(ins[1]), shapes[ins[1]])  # x @ W^T, stored as W^T
        elif op == "Add" and kind == "linear":
            for x in ins:
                if x in shapes:
                    put(_join(mn, "bias"), "reshape", src(x), shapes[x])
        elif op == "LayerNormalization" and kind == "layernorm":
            for k, p in ((1, "weight"), (2, "bias")):
                if len(ins) > k and ins[k] in shapes:
                    put(_join(mn, p), "copy", src(ins[k]), shapes[ins[k]])
        elif op == "Gather" and kind == "embedding" and ins[0] in shapes:
            put(_join(mn, "weight"), "copy", src(ins[0]), shapes[ins[0]])
    missing = [k for k in required if k not in plan]
    return plan, missing


def load_onnx_weights(module, model_path, torch, np):
    """Load the module's weights from the ONNX file's initializers (see plan_weights)."""
    import onnx
    from onnx import numpy_helper
    model = onnx.load(model_path)  # external data (dynamo exports) is read from beside the file
    plan, missing = plan_weights(describe_onnx(model), describe_torch(module, torch))
    if missing:
        fail("cannot map the initializers of %s to the rebuilt module's state_dict: %d of %d keys unmatched "
             "(%s%s). Initializer names or node scopes of this exporter are not understood (the legacy "
             "TorchScript exporter's are); nothing is faked"
             % (model_path, len(missing), len(missing) + len(plan), ", ".join(missing[:6]),
                ", ..." if len(missing) > 6 else ""))
    arrays = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    sd = module.state_dict()
    counts = {}
    for key, (how, arg) in plan.items():
        shape = tuple(sd[key].shape)
        if how == "copy":
            a = arrays[arg]
        elif how == "T":
            a = arrays[arg].T
        elif how == "reshape":
            a = arrays[arg].reshape(shape)
        elif how == "zeros":
            a = np.zeros(shape)
        elif how == "ones":
            a = np.ones(shape)
        else:  # sqrt1eps: BatchNorm weight that cancels its own 1/sqrt(var + eps) with var = 1
            a = np.full(shape, math.sqrt(1.0 + arg))
        sd[key] = torch.from_numpy(np.array(a, dtype=np.float32)).to(sd[key].dtype)  # a writable copy
        counts[how] = counts.get(how, 0) + 1
    module.load_state_dict(sd, strict=True)
    return counts


def rebuild(source, torch):
    """The module a torch_source.json names, built with tools/export_models.py's builders."""
    import importlib.util
    try:
        with open(source) as f:
            src = json.load(f)
        builder, kwargs = src["builder"], src.get("kwargs", {})
    except (OSError, ValueError, KeyError) as e:
        fail(f"{source}: not a torch_source.json: {e}")
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.environ.get("INFERLAB_TORCH_BUILDERS") or os.path.join(here, "..", "..", "tools", "export_models.py")
    if not os.path.exists(path):
        fail(f"{source} names builder '{builder}' of tools/export_models.py, which is not at {path} "
             "(set INFERLAB_TORCH_BUILDERS)")
    spec = importlib.util.spec_from_file_location("inferlab_export_models", path)
    mod = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(mod)
        torch.manual_seed(0)
        m = mod.build(builder, kwargs)
    except Exception as e:
        fail(f"cannot rebuild {builder}({kwargs}) from {source}: {type(e).__name__}: {e}")
    want = (src.get("versions") or {}).get("torch")
    if want and want != torch.__version__:
        note(f"{source} was written with torch {want}, this is {torch.__version__} (the check against "
             "ONNX Runtime decides)")
    return m.eval()


# ---------------------------------------------------------------- the check against ONNX Runtime

def _flatten(y):
    if isinstance(y, (tuple, list)):
        return [t for v in y for t in _flatten(v)]
    if isinstance(y, dict):
        return [t for v in y.values() for t in _flatten(v)]
    if hasattr(y, "to_tuple"):  # transformers' ModelOutput
        return _flatten(y.to_tuple())
    return [y]


def verify(model, model_path, names, arrays, dev, threads, torch, np, required=True):
    """Run the same inputs through the module and ONNX Runtime (CPU, full FP32); return the max
    abs difference over every output, or fail when it exceeds TOLERANCE. (None: not checked,
    allowed only for onnx2torch's conversion when onnxruntime is missing.)"""
    try:
        import onnxruntime as ort
    except ImportError as e:
        if not required:
            note(f"onnxruntime is not installed: the converted module is not checked against it ({e})")
            return None
        fail(f"the check against ONNX Runtime needs the onnxruntime Python package: {e}")
    so = ort.SessionOptions()
    so.intra_op_num_threads = max(1, threads)
    sess = ort.InferenceSession(model_path, so, providers=["CPUExecutionProvider"])
    ref = sess.run(None, dict(zip(names, arrays)))
    with torch.inference_mode():
        outs = _flatten(model(*[torch.from_numpy(x).to(dev) for x in arrays]))
    if len(outs) < len(ref):
        fail(f"the torch module returns {len(outs)} outputs, the ONNX model {len(ref)}")
    worst = 0.0
    for k, (r, o) in enumerate(zip(ref, outs)):
        o = o.float().cpu().numpy() if hasattr(o, "cpu") else np.asarray(o, dtype=np.float32)
        r = np.asarray(r, dtype=np.float32)
        if o.shape != r.shape:
            fail(f"output {k}: torch gives shape {list(o.shape)}, ONNX Runtime {list(r.shape)}")
        fin = np.isfinite(r) & np.isfinite(o)
        same_nonfinite = np.array_equal(np.isnan(r), np.isnan(o)) and np.array_equal(r[np.isinf(r)], o[np.isinf(r)])
        if not same_nonfinite:
            fail(f"output {k}: torch and ONNX Runtime disagree on NaN/inf positions")
        d = float(np.max(np.abs(r[fin] - o[fin]))) if fin.any() else 0.0
        worst = max(worst, d)
        if not d <= TOLERANCE:
            fail(f"output {k}: the torch module differs from ONNX Runtime by {d:.3g} (max abs; allowed "
                 f"{TOLERANCE:g}) on the same inputs: it is not the network in {model_path}; nothing is faked")
    del sess, ref, outs
    return worst


def evaluate(model, xs, names, batch, dev, torch, np, dtype=None, channels_last=False):
    """Output 0 of the module over the evaluation set: every graph input fed, in the graph's
    order and with its own dtype (token ids stay integers; float ones in the module's dtype), in
    batches padded like the C harness."""
    outs = []
    with torch.inference_mode():
        for chunks, pad in eval_batches(xs, names, batch):
            y = _flatten(model(*[feed(np.ascontiguousarray(c), dev, torch, dtype, channels_last) for c in chunks]))[0]
            y = y.float().cpu().numpy() if hasattr(y, "cpu") else np.asarray(y, dtype=np.float32)
            outs.append(y[:batch - pad])
    return np.concatenate(outs).astype(np.float32)


def reset_peak_rss():
    """Forget the host memory high-water mark so far (the ONNX file, the ONNX Runtime session of
    the check): Linux resets VmHWM on writing 5 to clear_refs. False where that is refused."""
    try:
        import gc
        gc.collect()
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_bytes():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def exact_fp32(torch, tf32=False):
    """No TF32 on the GPU: the other engines compute in full FP32 (tf32=True: float32 products
    may round their inputs to TF32 on the tensor cores, as inferlab's --precision tf32)."""
    try:
        if hasattr(torch.backends, "fp32_precision"):
            mode = "tf32" if tf32 else "ieee"
            torch.backends.fp32_precision = mode
            torch.backends.cuda.matmul.fp32_precision = mode
            torch.backends.cudnn.fp32_precision = mode
            torch.backends.cudnn.conv.fp32_precision = mode
        else:
            torch.backends.cuda.matmul.allow_tf32 = tf32
            torch.backends.cudnn.allow_tf32 = tf32
    except Exception as e:  # the check against ONNX Runtime still guards the figures
        if not tf32:
            note(f"could not turn TF32 off: {e}")
        else:
            fail(f"--precision tf32: could not turn TF32 on: {e}")


PRECISIONS = ("fp32", "tf32", "fp16", "bf16")


def to_precision(model, prec, torch):
    """The module in the arithmetic asked for, after its check in FP32: fp16/bf16 weights
    (module.half() / .to(bfloat16)) and channels-last memory for convolution networks (what the
    tensor cores want); tf32 turns TF32 on. Returns (module, input dtype or None, channels_last)."""
    if prec == "tf32":
        exact_fp32(torch, tf32=True)
    if prec not in ("fp16", "bf16"):
        return model, None, False
    dtype = torch.float16 if prec == "fp16" else torch.bfloat16
    model = model.to(dtype)
    conv = any(isinstance(m, torch.nn.modules.conv._ConvNd) for m in model.modules())
    if conv:
        model = model.to(memory_format=torch.channels_last)
    return model, dtype, conv


def feed(x, dev, torch, dtype=None, channels_last=False):
    """A numpy input on the device: float inputs in the module's dtype (4-D ones channels-last
    when the module is), integer ones (token ids) as they are."""
    t = torch.from_numpy(x).to(dev)
    if dtype is not None and t.is_floating_point():
        t = t.to(dtype)
        if channels_last and t.dim() == 4:
            t = t.contiguous(memory_format=torch.channels_last)
    return t


def device_facts(torch):
    """The GPU as torch sees it, for the store: name, compute capability, the CUDA runtime torch
    was built with, cuDNN ("9.10.2", from torch's integer)."""
    major, minor = torch.cuda.get_device_capability()
    return {"gpu": torch.cuda.get_device_name(), "gpu_cc": f"{major}.{minor}", "cuda_version": torch.version.cuda,
            "cudnn_version": cudnn_text(torch.backends.cudnn.version())}


def cudnn_text(v):
    """cuDNN's version integer as text: 9.x counts major*10000 + minor*100 + patch, earlier ones
    major*1000 + minor*100 + patch. None when there is no cuDNN."""
    if not v:
        return None
    return f"{v // 10000}.{v % 10000 // 100}.{v % 100}" if v >= 90000 else f"{v // 1000}.{v % 1000 // 100}.{v % 100}"


# ---------------------------------------------------------------- self-test (no torch needed)

def _mods(entries):
    """{name: Mod} from (qualified name, kind, params, has_bias) in registration order."""
    mods = {}
    for name, kind, params, has_bias in entries:
        mods[name] = Mod(kind, (), params, 1e-5, has_bias)
        if name:
            parent = name.rpartition(".")[0]
            mods[parent].children.append(name.rpartition(".")[2])
    return mods


def _tiny_resnet_mods():
    bn = lambda c: {"weight": (c,), "bias": (c,), "running_mean": (c,), "running_var": (c,)}
    e = [("", "other", {}, False), ("0", "conv", {"weight": (8, 3, 7, 7)}, False), ("1", "bn", bn(8), True),
         ("2", "other", {}, False), ("3", "other", {}, False)]
    for i, (cin, cout, stride) in zip((4, 5, 6, 7), ((8, 8, 1), (8, 16, 2), (16, 32, 2), (32, 64, 2))):
        p = str(i)
        e += [(p, "other", {}, False), (p + ".conv1", "conv", {"weight": (cout, cin, 3, 3)}, False),
              (p + ".bn1", "bn", bn(cout), True), (p + ".relu", "other", {}, False),
              (p + ".conv2", "conv", {"weight": (cout, cout, 3, 3)}, False), (p + ".bn2", "bn", bn(cout), True)]
        if stride != 1 or cin != cout:
            e += [(p + ".downsample", "other", {}, False),
                  (p + ".downsample.0", "conv", {"weight": (cout, cin, 1, 1)}, False),
                  (p + ".downsample.1", "bn", bn(cout), True)]
    e += [("8", "other", {}, False), ("9", "other", {}, False),
          ("10", "linear", {"weight": (10, 64), "bias": (10,)}, True)]
    return _mods(e)


def _tiny_bert_mods(layers=2, h=64, inter=128):
    lin = lambda i, o: {"weight": (o, i), "bias": (o,)}
    ln = {"weight": (h,), "bias": (h,)}
    e = [("", "other", {}, False), ("m", "other", {}, False), ("m.embeddings", "other", {}, False),
         ("m.embeddings.word_embeddings", "embedding", {"weight": (1000, h)}, False),
         ("m.embeddings.position_embeddings", "embedding", {"weight": (128, h)}, False),
         ("m.embeddings.token_type_embeddings", "embedding", {"weight": (2, h)}, False),
         ("m.embeddings.LayerNorm", "layernorm", ln, True), ("m.embeddings.dropout", "other", {}, False),
         ("m.encoder", "other", {}, False), ("m.encoder.layer", "other", {}, False)]
    for i in range(layers):
        p = "m.encoder.layer.%d" % i
        e += [(p, "other", {}, False), (p + ".attention", "other", {}, False),
              (p + ".attention.self", "other", {}, False)]
        e += [(p + ".attention.self." + q, "linear", lin(h, h), True) for q in ("query", "key", "value")]
        e += [(p + ".attention.self.dropout", "other", {}, False), (p + ".attention.output", "other", {}, False),
              (p + ".attention.output.dense", "linear", lin(h, h), True),
              (p + ".attention.output.LayerNorm", "layernorm", ln, True),
              (p + ".attention.output.dropout", "other", {}, False), (p + ".intermediate", "other", {}, False),
              (p + ".intermediate.dense", "linear", lin(h, inter), True),
              (p + ".intermediate.intermediate_act_fn", "other", {}, False), (p + ".output", "other", {}, False),
              (p + ".output.dense", "linear", lin(inter, h), True), (p + ".output.LayerNorm", "layernorm", ln, True),
              (p + ".output.dropout", "other", {}, False)]
    e += [("m.pooler", "other", {}, False), ("m.pooler.dense", "linear", lin(h, h), True),
          ("m.pooler.activation", "other", {}, False)]
    return _mods(e)


def _self_test_evaluate(check):
    """evaluate() on a two-input module (float features + int64 token ids, 7 samples in batches
    of 3: the last one padded) through a stand-in for the few torch calls it makes."""
    import contextlib
    import numpy as np

    class FakeTensor:
        def __init__(self, a):
            self.a = a

        def to(self, dev):
            return self

    class FakeTorch:
        inference_mode = staticmethod(contextlib.nullcontext)
        from_numpy = staticmethod(FakeTensor)

    seen = []

    def model(x, ids):
        seen.append((x.a.dtype, ids.a.dtype, x.a.shape[0]))
        return (x.a.sum(axis=1, keepdims=True) + ids.a[:, :1], None)

    rng = np.random.default_rng(1)
    xs = {"x": rng.standard_normal((7, 4)).astype(np.float32), "ids": rng.integers(0, 50, (7, 5))}
    y = evaluate(model, xs, ["x", "ids"], 3, "cpu", FakeTorch, np)
    want = xs["x"].sum(axis=1, keepdims=True) + xs["ids"][:, :1]
    check(y.shape == (7, 1) and np.allclose(y, want), "evaluate: two inputs, padded last batch")
    check(all(d == (np.float32, np.int64, 3) for d in seen), "evaluate: each input keeps its dtype, full batches")


def self_test(data_dir):
    """Plan the weights of tests/data's tiny models against hand-written module trees: the
    legacy exports (and tiny_resnet's dynamo export) must map every key; fused conv-bn, Identity
    aliases and transposed MatMul weights must be recognised. Prints one JSON object."""
    fails = []

    def check(cond, what):
        if not cond:
            fails.append(what)

    # synthetic graph: scope resolution and the planner's rules, no files needed
    mods = _tiny_resnet_mods()
    check(scope_module({"name": "/5/downsample/downsample.0/Conv"}, mods) == "5.downsample.0", "scope 5.downsample.0")
    check(scope_module({"name": "/10/Gemm"}, mods) == "10", "scope 10")
    check(scope_module({"name": "/nosuch/Conv"}, mods) is None, "unknown scope")
    check(scope_module({"name": "x", "scopes": ["", "4", "4.conv1", "conv2d"]}, mods) == "4.conv1", "dynamo scopes")
    check(_next_bn("4.conv2", mods) == "4.bn2" and _next_bn("10", mods) is None, "next bn")
    bmods = _tiny_bert_mods()
    check(scope_module({"name": "/m/encoder/layer.1/attention/self/query/MatMul"}, bmods)
          == "m.encoder.layer.1.attention.self.query", "scope through a ModuleList")
    _self_test_evaluate(check)
    check(cudnn_text(91002) == "9.10.2" and cudnn_text(8907) == "8.9.7" and cudnn_text(None) is None, "cuDNN versions")
    results = {}
    try:
        import onnx
    except ImportError:
        onnx = None
        note("onnx not installed: the tests/data part of the self-test is skipped")
    cases = [("tiny_resnet_legacy", _tiny_resnet_mods, True), ("tiny_resnet_dynamo", _tiny_resnet_mods, True),
             ("tiny_bert_legacy", _tiny_bert_mods, True), ("tiny_bert_dynamo", _tiny_bert_mods, False)]
    for name, mk, must in cases if onnx else []:
        path = os.path.join(data_dir, name, "model.onnx")
        if not os.path.exists(path):
            fails.append(f"{path} missing")
            continue
        plan, missing = plan_weights(describe_onnx(onnx.load(path, load_external_data=False)), mk())
        hows = {}
        for how, _ in plan.values():
            hows[how] = hows.get(how, 0) + 1
        results[name] = {"mapped": len(plan), "missing": missing[:4], "how": hows}
        if must:
            check(not missing, f"{name}: unmatched {missing[:4]}")
    r = results.get("tiny_resnet_legacy")
    if r:  # 12 convs, all with their BatchNorm folded in by the exporter
        check(r["how"].get("sqrt1eps") == 12 and r["how"].get("ones") == 12, "tiny_resnet_legacy: 12 fused conv-bn")
    r = results.get("tiny_bert_legacy")
    if r:  # 2 layers x 6 Linear weights stored transposed for MatMul
        check(r["how"].get("T") == 12, "tiny_bert_legacy: 12 transposed MatMul weights")
    print(json.dumps({"self_test": "fail" if fails else "ok", "failures": fails, "models": results}))
    return 0 if not fails else 1


# ---------------------------------------------------------------- the measurement

def capture(model, feeds, torch):
    """One forward pass recorded as a CUDA graph (after warm-up runs on a side stream, as
    torch.cuda.graphs asks) and replayed per call: the inputs stay at their addresses, so a
    replay computes on whatever they hold, like inferlab's --graphs."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.inference_mode():
        with torch.cuda.stream(side):
            for _ in range(3):
                model(*feeds)
        torch.cuda.current_stream().wait_stream(side)
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            model(*feeds)
    return g.replay

def main():
    if "--self-test" in sys.argv:
        k = sys.argv.index("--self-test")
        here = os.path.dirname(os.path.abspath(__file__))
        data = sys.argv[k + 1] if k + 1 < len(sys.argv) else os.path.join(here, "..", "..", "tests", "data")
        sys.exit(self_test(data))
    ap = peer_parser()
    ap.add_argument("--torch-source", help="torch_source.json: rebuild the module, weights from the ONNX file")
    ap.add_argument("--precision", default="fp32", choices=PRECISIONS,
                    help="the arithmetic on the GPU (checked against ONNX Runtime in fp32 first)")
    ap.add_argument("--graphs", action="store_true", help="capture one query as a CUDA graph and replay it")
    a = ap.parse_args()
    try:
        import numpy as np
        import torch
    except ImportError as e:
        fail(f"PyTorch peer needs torch and numpy: {e}")
    if a.device not in ("cpu", "cuda"):
        fail(f"--device {a.device}: cpu or cuda")
    if a.device == "cuda" and not torch.cuda.is_available():
        fail("--device cuda but torch sees no GPU")
    if a.device != "cuda" and (a.precision != "fp32" or a.graphs):
        fail(f"--precision {a.precision} / --graphs: the GPU's (--device cuda); the CPU computes fp32")
    torch.set_num_threads(max(1, a.threads))
    exact_fp32(torch)
    dev = torch.device(a.device)

    sidecar = os.path.join(os.path.dirname(os.path.abspath(a.model)), "torch_source.json")
    source = a.torch_source
    how = None
    if not source:
        try:
            import onnx
            from onnx2torch import convert
            how = "onnx2torch"
        except ImportError as e:
            if os.path.exists(sidecar):
                source = sidecar
            else:
                fail(f"PyTorch peer: onnx2torch is not installed ({e}) and there is no torch_source.json beside "
                     f"{a.model} (tools/export_models.py writes one; or give --torch-source FILE)")
    if how == "onnx2torch":
        try:
            model = convert(onnx.load(a.model))
        except Exception as e:  # an op onnx2torch does not convert: say which, do not fake a row
            fail(f"onnx2torch cannot convert {a.model}: {e}")
        version = torch.__version__ + " onnx2torch"
    else:
        model = rebuild(source, torch)
        counts = load_onnx_weights(model, a.model, torch, np)
        note(f"rebuilt from {source}; weights from {a.model}: " +
             ", ".join(f"{v} {k}" for k, v in sorted(counts.items())))
        version = torch.__version__ + " rebuilt"
    model = model.eval().to(dev)
    sync = torch.cuda.synchronize if a.device == "cuda" else (lambda: None)

    import onnx as _onnx
    g = _onnx.load(a.model, load_external_data=False).graph
    inits = set(i.name for i in g.initializer)
    graph_inputs = [i.name for i in g.input if i.name not in inits]
    del g
    must_check = how != "onnx2torch"

    facts = device_facts(torch) if a.device == "cuda" else {}
    if a.eval_in:
        xs = eval_inputs(a, graph_inputs)
        first = next(eval_batches(xs, graph_inputs, a.batch))[0]
        diff = verify(model, a.model, graph_inputs, [x[:VERIFY_SAMPLES] for x in first], dev, a.threads, torch, np,
                      must_check)
        model, dtype, cl = to_precision(model, a.precision, torch)
        np.save(a.eval_out, evaluate(model, xs, graph_inputs, a.batch, dev, torch, np, dtype, cl))
        print(json.dumps({"engine": "pytorch", "version": version, "verified_max_abs_diff": diff,
                          "precision": a.precision, **facts}))
        return

    given = {}
    for spec in a.input:
        name, eq, path = spec.partition("=")
        if not eq:
            fail(f"--input expects NAME=FILE, got {spec}")
        given[name] = np.load(path)
    names = [n for n in graph_inputs if n in given] if all(n in given for n in graph_inputs) else list(given)
    arrays = [given[n] for n in names]
    diff = verify(model, a.model, names, [x[:VERIFY_SAMPLES] for x in arrays], dev, a.threads, torch, np, must_check)
    if diff is not None:
        note(f"{a.model} on {a.device}: torch vs ONNX Runtime max|d| = {diff:.3g} on the bench inputs")
    model, dtype, cl = to_precision(model, a.precision, torch)
    if a.device == "cuda":
        torch.backends.cudnn.benchmark = True  # the algorithms timed on these shapes, as a user would
    reset_peak_rss()  # the host peak is running the model, not the check before it
    feeds = [feed(x, dev, torch, dtype, cl) for x in arrays]
    spq = a.spq if a.scenario == "multi-stream" else a.batch
    runs = math.ceil(spq / a.batch)
    if a.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    once = (lambda: model(*feeds))
    if a.graphs:
        once = capture(model, feeds, torch)

    def query():
        for _ in range(runs):
            once()
        sync()

    lat = []
    with torch.inference_mode():
        warm_up(a, query)
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
    peak = peak_rss_bytes()
    dev_peak = torch.cuda.max_memory_allocated() if a.device == "cuda" else None
    print(json.dumps({"engine": "pytorch", "version": version, "latencies_ms": lat,
                      "seconds": end - start, "samples": len(lat) * spq, "peak_host_bytes": peak,
                      "peak_device_bytes": dev_peak, "verified_max_abs_diff": diff,
                      "precision": a.precision, "graphs": a.graphs, **facts}))


if __name__ == "__main__":
    main()
