#!/usr/bin/python3
"""gen_schema.py - write engine/schema_table.c, the op schemas il_graph_verify checks nodes against.

Source of truth: ONNX's own schemas (onnx.defs, Debian python3-onnx, ONNX 1.12 = opsets up to 17):
for every op of the default domain and every version, the input/output counts, which formal
parameters may be omitted ("" in a model) and the attribute types. Opsets 18 to 21, which the
engine implements but ONNX 1.12 does not describe, and the ai.inferlab fused ops come from the
hand-written lists below (taken from the ONNX operator docs of those versions and from
engine/ops/fused*.c). Regenerate after changing them:

    /usr/bin/python3 tools/gen_schema.py > engine/schema_table.c

(/usr/bin/python3: python3-onnx belongs to the system interpreter.)
"""
import sys

import onnx
import onnx.defs

INF = 2147483647
# Attribute type codes (= ONNX AttributeProto.AttributeType).
F, I, S, T, G, FS, IS, SS = 1, 2, 3, 4, 5, 6, 7, 8

# (domain, name, since, [inputs as 's'ingle/'o'ptional/'v'ariadic], min_in, max_in,
#  [outputs], min_out, max_out, {attr: (type, required)})
REDUCE18 = {"keepdims": (I, 0), "noop_with_empty_axes": (I, 0)}
POOL = {"auto_pad": (S, 0), "ceil_mode": (I, 0), "dilations": (IS, 0), "kernel_shape": (IS, 1),
        "pads": (IS, 0), "strides": (IS, 0)}
RESIZE18 = {"antialias": (I, 0), "axes": (IS, 0), "coordinate_transformation_mode": (S, 0),
            "cubic_coeff_a": (F, 0), "exclude_outside": (I, 0), "extrapolation_value": (F, 0),
            "keep_aspect_ratio_policy": (S, 0), "mode": (S, 0), "nearest_mode": (S, 0)}
ACT = {"activation": (S, 0), "activation_params": (FS, 0)}
CONV = {"auto_pad": (S, 0), "dilations": (IS, 0), "group": (I, 0), "kernel_shape": (IS, 0),
        "pads": (IS, 0), "strides": (IS, 0)}

EXTRA = [
    # ---- ai.onnx opsets 18-21: only the ops whose inputs, outputs or attributes changed
    *[("", "Reduce" + r, 18, "so", 1, 2, "s", 1, 1, REDUCE18)
      for r in ("L1", "L2", "LogSum", "LogSumExp", "Max", "Mean", "Min", "Prod", "SumSquare")],
    ("", "Pad", 18, "ssoo", 2, 4, "s", 1, 1, {"mode": (S, 0)}),
    ("", "Resize", 18, "sooo", 1, 4, "s", 1, 1, RESIZE18),
    ("", "Split", 18, "so", 1, 2, "v", 1, INF, {"axis": (I, 0), "num_outputs": (I, 0)}),
    ("", "LpPool", 18, "s", 1, 1, "s", 1, 1, {**POOL, "p": (I, 0)}),
    ("", "AveragePool", 19, "s", 1, 1, "s", 1, 1, {**POOL, "count_include_pad": (I, 0)}),
    ("", "Cast", 19, "s", 1, 1, "s", 1, 1, {"to": (I, 1), "saturate": (I, 0)}),
    ("", "CastLike", 19, "ss", 2, 2, "s", 1, 1, {"saturate": (I, 0)}),
    ("", "QuantizeLinear", 19, "sso", 2, 3, "s", 1, 1, {"axis": (I, 0), "saturate": (I, 0)}),
    ("", "QuantizeLinear", 21, "sso", 2, 3, "s", 1, 1,
     {"axis": (I, 0), "saturate": (I, 0), "block_size": (I, 0), "output_dtype": (I, 0)}),
    ("", "DequantizeLinear", 21, "sso", 2, 3, "s", 1, 1, {"axis": (I, 0), "block_size": (I, 0)}),
    ("", "Mish", 18, "s", 1, 1, "s", 1, 1, {}),
    ("", "Gelu", 20, "s", 1, 1, "s", 1, 1, {"approximate": (S, 0)}),
    ("", "BitwiseNot", 18, "s", 1, 1, "s", 1, 1, {}),
    *[("", "Bitwise" + b, 18, "ss", 2, 2, "s", 1, 1, {}) for b in ("And", "Or", "Xor")],
    ("", "GroupNormalization", 18, "sss", 3, 3, "s", 1, 1, {"epsilon": (F, 0), "num_groups": (I, 1)}),
    ("", "GroupNormalization", 21, "sss", 3, 3, "s", 1, 1,
     {"epsilon": (F, 0), "num_groups": (I, 1), "stash_type": (I, 0)}),
    # ---- ai.inferlab: the fused ops passes/ make (engine/ops/fused*.c)
    ("ai.inferlab", "FusedGemm", 1, "sso", 2, 3, "s", 1, 1,
     {"alpha": (F, 0), "beta": (F, 0), "transA": (I, 0), "transB": (I, 0), **ACT}),
    ("ai.inferlab", "FusedMatMul", 1, "sso", 2, 3, "s", 1, 1, ACT),
    ("ai.inferlab", "FusedConv", 1, "ssoo", 2, 4, "s", 1, 1, {**CONV, **ACT}),
    # FusedConv of X * S, S a per-image channel scale [N, C, 1, 1] (squeeze-excitation's product)
    ("ai.inferlab", "ScaledConv", 1, "ssoos", 5, 5, "s", 1, 1, {**CONV, **ACT}),
    # FusedConv whose second output P is GlobalAveragePool(Y) (squeeze-excitation's pool, fuse-se-pool)
    ("ai.inferlab", "PooledConv", 1, "ssoo", 2, 4, "ss", 2, 2, {**CONV, **ACT}),
    # MaxPool(FusedConv(X, W, B)) in one: the pool's attributes prefixed pool_ (fuse-conv-pool)
    ("ai.inferlab", "ConvPool", 1, "sso", 2, 3, "s", 1, 1,
     {**CONV, **ACT, "pool_ceil_mode": (I, 0), "pool_dilations": (IS, 0), "pool_kernel_shape": (IS, 1),
      "pool_pads": (IS, 0), "pool_strides": (IS, 0), "pool_storage_order": (I, 0), "pool_auto_pad": (S, 0)}),
    ("ai.inferlab", "SiLU", 1, "s", 1, 1, "s", 1, 1, {}),
    ("ai.inferlab", "Gelu", 1, "s", 1, 1, "s", 1, 1, {"approximate": (S, 0)}),
    ("ai.inferlab", "HardSwish", 1, "s", 1, 1, "s", 1, 1, {}),
    ("ai.inferlab", "LayerNormalization", 1, "sso", 2, 3, "soo", 1, 3,
     {"axis": (I, 0), "epsilon": (F, 0), "stash_type": (I, 0)}),
    # com.microsoft SkipLayerNormalization's semantics: LayerNorm over the last axis of input +
    # skip [+ bias]; outputs Y, mean, inv_std_var, the sum (fuse-skip-layernorm)
    ("ai.inferlab", "SkipLayerNormalization", 1, "sssoo", 3, 5, "sooo", 1, 4, {"epsilon": (F, 0)}),
    ("ai.inferlab", "Attention", 1, "ssso", 3, 4, "s", 1, 1, {"scale": (F, 0)}),
    # Attention on Q [B,Sq,H,D], K [B,Sk,H,D] (not transposed), V [B,Sk,H,Dv] -> Y [B,Sq,H,Dv]:
    # the head transposes around Attention folded into its strides (fuse-attention)
    ("ai.inferlab", "MultiHeadAttention", 1, "ssso", 3, 4, "s", 1, 1, {"scale": (F, 0)}),
    # ChannelShuffle(X1..Xn) -> Y1..Ym: the Xi joined along the channels, shuffled, split in m equal parts
    ("ai.inferlab", "ChannelShuffle", 1, "v", 1, INF, "v", 1, INF, {"groups": (I, 1)}),
    # ---- the integer ops fuse-qdq makes (engine/ops/qfused.c), and ONNX Runtime's com.microsoft
    # QLinearAdd / QLinearMul / QGemm that its quantization tools write
    ("ai.inferlab", "QConv", 1, "sssssssso", 8, 9, "s", 1, 1, {**CONV, **ACT}),
    ("ai.inferlab", "QMatMul", 1, "sssssssso", 8, 9, "s", 1, 1, ACT),
    ("ai.inferlab", "QAdd", 1, "ssssssss", 8, 8, "s", 1, 1, ACT),
    ("com.microsoft", "QLinearAdd", 1, "ssossoso", 7, 8, "s", 1, 1, {}),
    ("com.microsoft", "QLinearMul", 1, "ssossoso", 7, 8, "s", 1, 1, {}),
    # QGemm (quantize_static's QOperator form of Gemm): C, y_scale, y_zero_point optional
    # (without y_zero_point the output is float)
    ("com.microsoft", "QGemm", 1, "ssssssooo", 6, 9, "s", 1, 1,
     {"alpha": (F, 0), "transA": (I, 0), "transB": (I, 0)}),
    # DynamicQuantizeMatMul (A float, B, b_scale [, b_zero_point, bias]): what fuse-dynamic-q
    # makes of quantize_dynamic's DynamicQuantizeLinear -> MatMulInteger -> Cast -> Mul [-> Add]
    ("com.microsoft", "DynamicQuantizeMatMul", 1, "sssoo", 3, 5, "s", 1, 1, {}),
]

OPT = {0: "s", 1: "o", 2: "v"}


def from_onnx():
    out = []
    for s in onnx.defs.get_all_schemas_with_history():
        if s.domain != "" or s.since_version > 17:
            continue
        attrs = {k: (int(a.type), int(a.required)) for k, a in s.attributes.items()}
        out.append(("", s.name, s.since_version, "".join(OPT[int(p.option)] for p in s.inputs),
                    s.min_input, s.max_input, "".join(OPT[int(p.option)] for p in s.outputs),
                    s.min_output, s.max_output, attrs))
    return out


def main():
    if onnx.defs.onnx_opset_version() < 17:
        sys.exit("gen_schema.py: needs ONNX 1.12 or newer (opset 17)")
    rows = sorted(from_onnx() + EXTRA, key=lambda r: (r[0], r[1], r[2]))
    w = sys.stdout.write
    w("/*\n * schema_table.c - GENERATED by tools/gen_schema.py from ONNX %s's op schemas plus the\n"
      " * hand-written opset 18-21 and ai.inferlab entries in that script. Do not edit: regenerate.\n"
      " * Sorted by (domain, name, since_version): schema.c searches it by bisection.\n */\n"
      % onnx.__version__)
    w('#include "schema.h"\n\n')
    for n, r in enumerate(rows):
        if r[9]:
            items = ", ".join('{"%s", %d, %d}' % (k, t, q) for k, (t, q) in sorted(r[9].items()))
            w("static const il_schema_attr a%d[] = {%s};\n" % (n, items))
    w("\nconst il_schema il_schemas[] = {\n")
    for n, r in enumerate(rows):
        dom, name, since, ins, mi, ma, outs, mo, mao, attrs = r
        w('    {"%s", "%s", %d, "%s", %d, %d, "%s", %d, %d, %d, %s},\n'
          % (dom, name, since, ins, mi, ma, outs, mo, mao, len(attrs), ("a%d" % n) if attrs else "0"))
    w("};\nconst int il_n_schemas = %d;\n" % len(rows))


main()
