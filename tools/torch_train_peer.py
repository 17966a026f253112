#!/usr/bin/env python3
"""torch_train_peer.py - the PyTorch peer for training throughput: the zoo's `vgg` (3 stages of
2x conv3x3-BN-ReLU + max pooling, global average pooling, linear) trained on Fashion-MNIST with
the same batch, optimizer and augmentation as `inferlab train`, timed over one epoch after a
warm-up epoch. Float32 without TF32 (as inferlab's cuBLAS runs), and with PyTorch's defaults.

    python3 tools/torch_train_peer.py --data DIR --width 32 [--device cuda|cpu] [--threads N]

Prints one line per setting: images/s and the epoch's training accuracy."""
import argparse
import gzip
import time

import numpy as np
import torch
import torch.nn as nn


def load(d):
    with gzip.open(f"{d}/train-images-idx3-ubyte.gz") as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)
    with gzip.open(f"{d}/train-labels-idx1-ubyte.gz") as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8)
    x = (x.astype(np.float32) / 255 - 0.2860) / 0.3530
    return torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))


def vgg(width, classes=10):
    layers, cin = [], 1
    for s in range(3):
        ch = width << s
        for _ in range(2):
            layers += [nn.Conv2d(cin, ch, 3, padding=1, bias=False), nn.BatchNorm2d(ch), nn.ReLU(inplace=True)]
            cin = ch
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, classes))


def augment(x, gen):
    """Random crop with padding 2 and horizontal flip per image, as index arithmetic on the batch's device."""
    n, dev = x.shape[0], x.device
    p = nn.functional.pad(x, (2, 2, 2, 2))
    dy = torch.randint(0, 5, (n,), generator=gen).to(dev)
    dx = torch.randint(0, 5, (n,), generator=gen).to(dev)
    flip = (torch.rand(n, generator=gen) < 0.5).to(dev)
    ar = torch.arange(28, device=dev)
    rows = (dy[:, None] + ar)[:, :, None]
    cols = (dx[:, None] + torch.where(flip[:, None], 27 - ar, ar))[:, None, :]
    return p[torch.arange(n, device=dev)[:, None, None], 0, rows, cols].unsqueeze(1)


def epoch(model, opt, x, y, batch, dev, gen):
    perm = torch.randperm(x.shape[0], generator=gen)
    correct = seen = 0
    lossf = nn.CrossEntropyLoss()
    t0 = time.perf_counter()
    for b0 in range(0, x.shape[0] - 1, batch):
        idx = perm[b0:b0 + batch]
        xb = augment(x[idx].to(dev, non_blocking=True), gen)
        yb = y[idx].to(dev, non_blocking=True)
        out = model(xb)
        loss = lossf(out, yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        correct += (out.argmax(1) == yb).sum().item()
        seen += len(idx)
    if dev == "cuda":
        torch.cuda.synchronize()
    return seen / (time.perf_counter() - t0), correct / seen


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--limit", type=int, default=0, help="first N training images (CPU runs)")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    x, y = load(a.data)
    if a.limit:
        x, y = x[:a.limit], y[:a.limit]
    settings = [("float32", False)] + ([("tf32 (defaults)", True)] if a.device == "cuda" else [])
    for name, tf32 in settings:
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32
        torch.manual_seed(1)
        gen = torch.Generator().manual_seed(1)
        model = vgg(a.width).to(a.device)
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
        epoch(model, opt, x, y, a.batch, a.device, gen)  # warm-up: cuDNN autotuning, allocator
        ips, acc = epoch(model, opt, x, y, a.batch, a.device, gen)
        dev = torch.cuda.get_device_name() if a.device == "cuda" else f"cpu, {torch.get_num_threads()} threads"
        print(f"pytorch {torch.__version__} vgg w{a.width} batch {a.batch} {name} on {dev}: {ips:.0f} images/s "
              f"(train acc {100 * acc:.2f}%)")


if __name__ == "__main__":
    main()
