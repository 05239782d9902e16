#!/usr/bin/python3
"""PyTorch reference for webtrain's `fast` recipe (issue 10): the accuracy to compare with.

The net is the `fast` preset (web/models/fast.txt), after Keller Jordan's airbench
(github.com/KellerJordan/cifar10-airbench) at reduced widths, and the recipe is the one that
preset carries. Everything is written out here in plain PyTorch so it can be read beside the
description file:

  net      whitening conv 2x2 (3 -> 24, frozen, from the patch covariance of the first
           --whiten-images training images), GELU; three groups of widths W1/W2/W3:
           conv 3x3 pad 1 -> maxpool 2 -> BN -> GELU -> conv 3x3 pad 1 -> BN -> GELU;
           maxpool 3 -> flatten -> linear W3 -> 10 without bias -> x 1/9.
           Convs have no bias and a Dirac init on their first in-channels; BN weights are
           frozen at 1 (eps 1e-12, momentum 0.4); the whitening conv's bias trains for
           --whiten-bias-epochs epochs.
  data     CIFAR-10 binary files, normalised with CIFAR-10's mean and std; flips alternate
           (a random flip fixed at epoch 0, the whole set flipped on odd epochs); translations
           of +-2 px with reflect padding, drawn per image and epoch.
  loss     cross-entropy with label smoothing 0.2, summed over the batch.
  optim    Nesterov SGD, momentum 0.85; lr = 11.5 / (1024 (1 + 1/(1 - momentum))) per summed
           loss, x64 for BN biases; weight decay wd = 0.0153 * batch / (1024 (1 + 1/(1 - m)))
           as lr * weight_decay (PyTorch's coupled form, per group).
  schedule piecewise linear per step: 0.2x -> 1x at 23% of the steps -> 0.07x at the end.
  lookahead from epoch 3, every 5 steps: ema <- rho ema + (1 - rho) w, copied back into w,
           rho = 0.95^5 (step/total)^3; a final copy at the end of each epoch.
  eval     batch norm in eval mode; plain and flip + translate TTA (0.5 mean(x, flip x) +
           0.5 mean over the two 1-px diagonal translations, each flip-averaged).

  /usr/bin/python3 tests/reference/pytorch_recipe.py --data ../shared/cifar-10-batches-bin
  /usr/bin/python3 tests/reference/pytorch_recipe.py --data DIR --widths 32,64,64 --epochs 7 --seed 1

It prints one JSON line per epoch and a final line:
  {"event":"epoch","epoch":1,"test_accuracy":0.71,"train_s":120.3}
  {"event":"done","test_accuracy":0.842,"tta_accuracy":0.855,"train_s":612.0,"threads":1,...}
train_s is the wall time of the training loops (whitening included, evaluation excluded).
"""

import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

RECORD_BYTES = 3073
TRAIN_FILES = ["data_batch_%d.bin" % i for i in range(1, 6)]
TEST_FILES = ["test_batch.bin"]
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)


def die(msg):
    print("error: " + msg, file=sys.stderr)
    sys.exit(2)


def read_records(data_dir, names):
    chunks = []
    for name in names:
        path = os.path.join(data_dir, name)
        if not os.path.isfile(path):
            die("missing CIFAR-10 file %s (--data must hold %s)" % (path, ", ".join(TRAIN_FILES + TEST_FILES)))
        raw = np.fromfile(path, dtype=np.uint8)
        if raw.size == 0 or raw.size % RECORD_BYTES:
            die("%s: %d bytes is not a whole number of %d-byte CIFAR-10 records" % (path, raw.size, RECORD_BYTES))
        chunks.append(raw.reshape(-1, RECORD_BYTES))
    return np.concatenate(chunks)


def decode(recs):
    labels = torch.from_numpy(recs[:, 0].astype(np.int64))
    images = torch.from_numpy(np.ascontiguousarray(recs[:, 1:]).reshape(-1, 3, 32, 32)).float().div_(255)
    mean = torch.tensor(CIFAR_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR_STD).view(1, 3, 1, 1)
    return images.sub_(mean).div_(std), labels


class Scale(nn.Module):
    def __init__(self, factor):
        super().__init__()
        self.factor = factor

    def forward(self, x):
        return x * self.factor


def conv(cin, cout, kernel=3, padding=1, bias=False):
    layer = nn.Conv2d(cin, cout, kernel, padding=padding, bias=bias)
    with torch.no_grad():
        nn.init.dirac_(layer.weight[: min(cin, cout)])
        if bias:
            layer.bias.zero_()
    return layer


def batchnorm(channels):
    layer = nn.BatchNorm2d(channels, eps=1e-12, momentum=0.4)
    layer.weight.requires_grad_(False)
    return layer


def make_net(widths, whiten_width):
    layers = [conv(3, whiten_width, kernel=2, padding=0, bias=True), nn.GELU()]
    cin = whiten_width
    for w in widths:
        layers += [conv(cin, w), nn.MaxPool2d(2), batchnorm(w), nn.GELU(),
                   conv(w, w), batchnorm(w), nn.GELU()]
        cin = w
    layers += [nn.MaxPool2d(3), nn.Flatten(), nn.Linear(cin, 10, bias=False), Scale(1 / 9)]
    net = nn.Sequential(*layers)
    net[0].weight.requires_grad_(False)
    return net


def init_whitening(layer, images, eps):
    """Eigenvectors of the 2x2x3 patch covariance scaled by 1/sqrt(lambda + eps), with their negatives."""
    c, (kh, kw) = images.shape[1], layer.weight.shape[2:]
    patches = images.unfold(2, kh, 1).unfold(3, kw, 1).permute(0, 2, 3, 1, 4, 5).reshape(-1, c * kh * kw).double()
    cov = patches.T @ patches / patches.shape[0]
    eigenvalues, eigenvectors = torch.linalg.eigh(cov)
    eigenvalues, eigenvectors = eigenvalues.flip(0), eigenvectors.T.flip(0)  # largest first
    scaled = (eigenvectors / torch.sqrt(eigenvalues + eps)[:, None]).reshape(-1, c, kh, kw)
    with torch.no_grad():
        layer.weight.copy_(torch.cat((scaled, -scaled)).float())


def piecewise(step, total, points):
    """Linear interpolation of the (fraction of steps, factor) points at step."""
    x = step / total
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        if x <= x1:
            return y0 + (y1 - y0) * (x - x0) / (x1 - x0) if x1 > x0 else y1
    return points[-1][1]


def translate_batch(padded, shifts, size):
    """Crops size x size windows of the reflect-padded batch at per-image shifts (dy, dx) in [0, 2r]."""
    out = torch.empty((padded.shape[0], padded.shape[1], size, size))
    for i in range(padded.shape[0]):
        dy, dx = int(shifts[i, 0]), int(shifts[i, 1])
        out[i] = padded[i, :, dy:dy + size, dx:dx + size]
    return out


def evaluate(net, images, labels, tta):
    net.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, images.shape[0], 1000):
            x = images[start:start + 1000]
            mirror = lambda t: 0.5 * net(t) + 0.5 * net(t.flip(-1))
            if tta == "none":
                logits = net(x)
            elif tta == "flip":
                logits = mirror(x)
            else:
                padded = F.pad(x, (1,) * 4, "reflect")
                shifted = (mirror(padded[:, :, 0:32, 0:32]) + mirror(padded[:, :, 2:34, 2:34])) / 2
                logits = 0.5 * mirror(x) + 0.5 * shifted
            correct += int((logits.argmax(1) == labels[start:start + 1000]).sum())
    net.train()
    return correct / images.shape[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help="folder with the CIFAR-10 binary files")
    ap.add_argument("--widths", default="32,96,96")
    ap.add_argument("--epochs", type=float, default=5)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--lr", type=float, default=11.5, help="per 1024 examples, decoupled from momentum")
    ap.add_argument("--momentum", type=float, default=0.85)
    ap.add_argument("--weight-decay", type=float, default=0.0153, help="per 1024 examples, decoupled from lr")
    ap.add_argument("--bias-scaler", type=float, default=64.0)
    ap.add_argument("--label-smoothing", type=float, default=0.2)
    ap.add_argument("--translate", type=int, default=2)
    ap.add_argument("--whiten-images", type=int, default=5000)
    ap.add_argument("--whiten-bias-epochs", type=int, default=3)
    ap.add_argument("--ema-start-epoch", type=int, default=3)
    ap.add_argument("--limit-train", type=int, default=None)
    args = ap.parse_args()
    try:
        widths = [int(w) for w in args.widths.split(",")]
    except ValueError:
        die("--widths must be comma-separated integers, e.g. 32,96,96")

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    train_x, train_y = decode(read_records(args.data, TRAIN_FILES))
    test_x, test_y = decode(read_records(args.data, TEST_FILES))
    if args.limit_train:
        train_x, train_y = train_x[: args.limit_train], train_y[: args.limit_train]
    n, batch = train_x.shape[0], args.batch_size

    start = time.perf_counter()
    net = make_net(widths, 24)
    init_whitening(net[0], train_x[: args.whiten_images], 5e-4)

    scale = 1024 * (1 + 1 / (1 - args.momentum))
    lr = args.lr / scale
    wd = args.weight_decay * batch / scale
    lr_bias = lr * args.bias_scaler
    bn_biases = [m.bias for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    others = [p for p in net.parameters() if p.requires_grad and all(p is not b for b in bn_biases)]
    optimizer = torch.optim.SGD([dict(params=bn_biases, lr=lr_bias, weight_decay=wd / lr_bias),
                                 dict(params=others, lr=lr, weight_decay=wd / lr)],
                                momentum=args.momentum, nesterov=True)
    base_lrs = [g["lr"] for g in optimizer.param_groups]
    loss_fn = nn.CrossEntropyLoss(label_smoothing=args.label_smoothing, reduction="sum")

    steps_per_epoch = n // batch  # airbench drops the last partial batch
    total = math.ceil(steps_per_epoch * args.epochs)
    points = [(0, 0.2), (0.23, 1.0), (1, 0.07)]
    flipped = torch.where((torch.rand(n) < 0.5).view(-1, 1, 1, 1), train_x.flip(-1), train_x)
    padded = F.pad(flipped, (args.translate,) * 4, "reflect") if args.translate else flipped
    train_s, step, ema = time.perf_counter() - start, 0, None
    for epoch in range(math.ceil(args.epochs)):
        t0 = time.perf_counter()
        net[0].bias.requires_grad_(epoch < args.whiten_bias_epochs)
        order = torch.randperm(n)
        shifts = torch.randint(0, 2 * args.translate + 1, (n, 2))
        for i in range(steps_per_epoch):
            idx = order[i * batch:(i + 1) * batch]
            x = translate_batch(padded[idx], shifts[idx], 32) if args.translate else padded[idx]
            if epoch % 2 == 1:
                x = x.flip(-1)
            for g, base in zip(optimizer.param_groups, base_lrs):
                g["lr"] = base * piecewise(step, total, points)
            loss = loss_fn(net(x), train_y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            if epoch >= args.ema_start_epoch and step % 5 == 0:
                state = [t for t in net.state_dict().values() if t.dtype == torch.float32]
                if ema is None:
                    ema = [t.clone() for t in state]
                else:
                    rho = 0.95 ** 5 * (step / total) ** 3
                    for e, t in zip(ema, state):
                        e.lerp_(t, 1 - rho)
                        t.copy_(e)
            if step >= total:
                break
        if ema is not None:
            for e, t in zip(ema, [t for t in net.state_dict().values() if t.dtype == torch.float32]):
                t.copy_(e)
        train_s += time.perf_counter() - t0
        print(json.dumps({"event": "epoch", "epoch": epoch + 1, "loss": round(loss.item() / batch, 4),
                          "test_accuracy": evaluate(net, test_x, test_y, "none"), "train_s": round(train_s, 1)}),
              flush=True)
    print(json.dumps({"event": "done", "widths": widths, "epochs": args.epochs, "batch": batch, "seed": args.seed,
                      "threads": args.threads, "test_accuracy": evaluate(net, test_x, test_y, "none"),
                      "tta_accuracy": evaluate(net, test_x, test_y, "flip-translate"), "train_s": round(train_s, 1),
                      "params": sum(p.numel() for p in net.parameters())}), flush=True)


if __name__ == "__main__":
    main()
