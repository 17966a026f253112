#!/usr/bin/env python3
"""fill_weights.py - turn a model skeleton (tools/export_models.py --skeleton) into a runnable model.

A skeleton is an exported network whose large float initializers were left out so that it fits in
the repository (bench/models/*.onnx, a few KB each); the metadata key inferlab.skeleton keeps each
one's mean, std, min and max. This writes them back as seeded normal values clipped to [min, max]
(clipping keeps BatchNorm variances positive), the same bytes on every machine, so speed
measurements of the real graphs can be made anywhere. The values are not the exported ones:
nothing compares outputs of a filled model with the original.

usage: python3 tools/fill_weights.py SKELETON.onnx OUT.onnx
"""
import json
import sys
import zlib

import numpy as np
import onnx


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip().splitlines()[-1])
    m = onnx.load(sys.argv[1])
    meta = {p.key: p.value for p in m.metadata_props}
    if "inferlab.skeleton" not in meta:
        sys.exit("fill_weights: %s is not a skeleton (no inferlab.skeleton metadata)" % sys.argv[1])
    spec = json.loads(meta["inferlab.skeleton"])
    inits = {t.name: t for t in m.graph.initializer}
    for name, (mean, std, lo, hi) in spec.items():
        t = inits.get(name)
        if t is None:
            sys.exit("fill_weights: the skeleton names a weight '%s' it does not have" % name)
        rng = np.random.default_rng(zlib.crc32(name.encode()))
        a = np.clip(rng.normal(mean, std, tuple(t.dims)), lo, hi).astype(np.float32)
        t.raw_data = a.tobytes()
    keep = [p for p in m.metadata_props if p.key != "inferlab.skeleton"]
    del m.metadata_props[:]
    m.metadata_props.extend(keep)
    onnx.checker.check_model(m)
    onnx.save(m, sys.argv[2])


if __name__ == "__main__":
    main()
