#!/usr/bin/python3
"""Reference CIFAR-10 training with PyTorch (the classic tutorial SimpleCNN).

This is the plain training loop a new PyTorch user would write, reading the
CIFAR-10 binary files (data_batch_1.bin .. data_batch_5.bin, test_batch.bin)
directly with numpy, so torchvision isn't needed.  It is used for reference
runs and as the peer in webtrain's benchmark.

  /usr/bin/python3 tests/reference/pytorch_train.py --data /path/to/cifar-10-batches-bin
  /usr/bin/python3 tests/reference/pytorch_train.py --data DIR --bench-steps 200 --threads 1
  /usr/bin/python3 tests/reference/pytorch_train.py --data DIR --model model.py --bench-steps 200

With --model FILE.py, the net is that file's `Model` (a module webtrain generates from a model
description: web/pytorch-module.js, e.g. the page's "PyTorch module" download or
tests/reference/model_py.mjs) instead of SimpleCNN. Its input must be the same normalised
3x32x32 images (its MEAN and STD 0.5, as webtrain's CIFAR-10 format); --model refuses others.

Text output (every 100 steps, the mean loss of the last 100 steps, then after
each epoch):
  Epoch [1/5], Step [100/782], Loss: 2.3012
  Test accuracy: 59.90% (5990/10000)

With --json, one JSON object per line instead:
  {"event":"loss","epoch":1,"step":100,"steps":782,"loss":2.0752}
  {"event":"epoch","epoch":1,"test_accuracy":0.599,"correct":5990,"total":10000,
   "elapsed_s":9.6,"train_samples_per_s":5000}
(elapsed_s is the wall time of the epoch's training loop, evaluation excluded;
train_samples_per_s = training samples of the epoch / elapsed_s.)

With --bench-steps N, no epochs are run: after 20 warm-up steps, N training
steps (batch gather, zero_grad, forward, loss, backward, Adam step, loss.item())
on shuffled full batches of the training data are timed one by one, and one
line is printed:
  {"event":"bench","model":"SimpleCNN","threads":1,"batch":64,"steps":200,"samples_per_s":X,"step_ms_median":Y}
with samples_per_s = batch / median step time.
"""

import argparse
import importlib.util
import json
import os
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim

RECORD_BYTES = 3073
TRAIN_FILES = ["data_batch_%d.bin" % i for i in range(1, 6)]
TEST_FILES = ["test_batch.bin"]
WARMUP_STEPS = 20


class SimpleCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        x = self.fc3(x)
        return x


def die(msg):
    print("error: " + msg, file=sys.stderr)
    sys.exit(2)


def load_model_class(path):
    """The `Model` class of a generated module file (see --model)."""
    if not os.path.isfile(path):
        die("--model %s is not a file" % path)
    spec = importlib.util.spec_from_file_location("webtrain_model", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not hasattr(module, "Model"):
        die("--model %s defines no class Model" % path)
    # decode() below normalises 3x32x32 images with mean 0.5 and std 0.5 for 10 classes.
    for name, want in (("INPUT_SHAPE", (3, 32, 32)), ("CLASSES", 10), ("MEAN", (0.5,) * 3), ("STD", (0.5,) * 3)):
        got = getattr(module, name, want)
        if (tuple(got) if isinstance(got, (tuple, list)) else got) != want:
            die("--model %s: %s is %r, this script feeds CIFAR-10 as %r" % (path, name, got, want))
    return module.Model


def read_records(data_dir, names, limit=None):
    """Reads CIFAR-10 binary files; returns (uint8 (N,3073) records)."""
    chunks = []
    total = 0
    for name in names:
        if limit is not None and total >= limit:
            break
        path = os.path.join(data_dir, name)
        if not os.path.isfile(path):
            die("missing CIFAR-10 file %s (--data must hold %s)"
                % (path, ", ".join(TRAIN_FILES + TEST_FILES)))
        raw = np.fromfile(path, dtype=np.uint8)
        if raw.size == 0 or raw.size % RECORD_BYTES != 0:
            die("%s: size %d bytes is not a positive multiple of the %d-byte CIFAR-10 record"
                % (path, raw.size, RECORD_BYTES))
        recs = raw.reshape(-1, RECORD_BYTES)
        bad = np.nonzero(recs[:, 0] > 9)[0]
        if bad.size:
            die("%s: record %d has label %d (labels must be 0..9); is this a CIFAR-10 binary file?"
                % (path, int(bad[0]), int(recs[bad[0], 0])))
        chunks.append(recs)
        total += recs.shape[0]
    recs = np.concatenate(chunks, axis=0)
    if limit is not None:
        recs = recs[:limit]
    return recs


def decode(recs):
    """Images as float32 (N,3,32,32) normalised like ToTensor()+Normalize(0.5, 0.5)."""
    labels = torch.from_numpy(recs[:, 0].astype(np.int64))
    pixels = np.ascontiguousarray(recs[:, 1:]).reshape(-1, 3, 32, 32)
    # Same arithmetic as (t.float().div(255) - 0.5) / 0.5, done in place to
    # avoid allocating three more 600 MB tensors for the training set.
    images = torch.from_numpy(pixels).float()
    images.div_(255).sub_(0.5).div_(0.5)
    return images, labels


def batches(n, batch_size, generator):
    """Shuffled index batches, last partial batch kept (like DataLoader(shuffle=True))."""
    perm = torch.randperm(n, generator=generator)
    for i in range(0, n, batch_size):
        yield perm[i:i + batch_size]


def evaluate(net, images, labels, batch_size=1000):
    correct = 0
    total = 0
    net.eval()
    with torch.no_grad():
        for i in range(0, images.shape[0], batch_size):
            outputs = net(images[i:i + batch_size])
            _, predicted = torch.max(outputs, 1)
            total += labels[i:i + batch_size].size(0)
            correct += (predicted == labels[i:i + batch_size]).sum().item()
    net.train()
    return correct, total


def emit(obj):
    print(json.dumps(obj, separators=(",", ":")), flush=True)


def bench(args, net, criterion, optimizer, images, labels, generator):
    n = images.shape[0]

    if n < args.batch_size:
        die("--bench-steps needs at least --batch-size (%d) training images, got %d" % (args.batch_size, n))

    def endless():
        # Full batches only (the partial last batch of each shuffle is skipped),
        # so every timed step has exactly batch_size samples.
        while True:
            for idx in batches(n, args.batch_size, generator):
                if idx.numel() == args.batch_size:
                    yield idx

    it = endless()
    times = []
    for step in range(WARMUP_STEPS + args.bench_steps):
        t0 = time.perf_counter()
        idx = next(it)
        inputs, targets = images[idx], labels[idx]
        optimizer.zero_grad()
        outputs = net(inputs)
        loss = criterion(outputs, targets)
        loss.backward()
        optimizer.step()
        loss.item()
        t1 = time.perf_counter()
        if step >= WARMUP_STEPS:
            times.append(t1 - t0)
    median = statistics.median(times)
    emit({"event": "bench", "model": args.model or "SimpleCNN", "threads": torch.get_num_threads(), "batch": args.batch_size,
          "steps": args.bench_steps, "samples_per_s": round(args.batch_size / median, 1),
          "step_ms_median": round(median * 1000, 3)})


def main():
    p = argparse.ArgumentParser(description="Reference PyTorch training (SimpleCNN, or --model) on CIFAR-10 binary files.")
    p.add_argument("--data", required=True, help="directory with data_batch_1..5.bin and test_batch.bin")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.001)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default 1)")
    p.add_argument("--limit-train", type=int, default=None, help="use only the first N training images")
    p.add_argument("--limit-test", type=int, default=None, help="use only the first N test images")
    p.add_argument("--bench-steps", type=int, default=None,
                   help="time N training steps (after %d warm-up steps) instead of training" % WARMUP_STEPS)
    p.add_argument("--json", action="store_true", help="print one JSON object per line")
    p.add_argument("--model", default=None,
                   help="a generated model.py whose Model replaces SimpleCNN (default: SimpleCNN)")
    args = p.parse_args()

    if args.epochs < 1 or args.batch_size < 1 or args.threads < 1:
        die("--epochs, --batch-size and --threads must be >= 1")
    if args.bench_steps is not None and args.bench_steps < 1:
        die("--bench-steps must be >= 1")
    for name in ("limit_train", "limit_test"):
        v = getattr(args, name)
        if v is not None and v < 1:
            die("--%s must be >= 1" % name.replace("_", "-"))
    if not os.path.isdir(args.data):
        die("--data %s is not a directory" % args.data)

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    generator = torch.Generator()
    generator.manual_seed(args.seed)

    train_images, train_labels = decode(read_records(args.data, TRAIN_FILES, args.limit_train))

    net = load_model_class(args.model)() if args.model else SimpleCNN()
    criterion = nn.CrossEntropyLoss()
    optimizer = optim.Adam(net.parameters(), lr=args.lr)

    if args.bench_steps is not None:
        bench(args, net, criterion, optimizer, train_images, train_labels, generator)
        return

    test_images, test_labels = decode(read_records(args.data, TEST_FILES, args.limit_test))
    n = train_images.shape[0]
    steps = (n + args.batch_size - 1) // args.batch_size

    for epoch in range(1, args.epochs + 1):
        t0 = time.perf_counter()
        running_loss = 0.0
        for i, idx in enumerate(batches(n, args.batch_size, generator)):
            inputs, targets = train_images[idx], train_labels[idx]

            optimizer.zero_grad()
            outputs = net(inputs)
            loss = criterion(outputs, targets)
            loss.backward()
            optimizer.step()

            running_loss += loss.item()
            if (i + 1) % 100 == 0:
                mean = running_loss / 100
                if args.json:
                    emit({"event": "loss", "epoch": epoch, "step": i + 1, "steps": steps,
                          "loss": round(mean, 4)})
                else:
                    print("Epoch [%d/%d], Step [%d/%d], Loss: %.4f"
                          % (epoch, args.epochs, i + 1, steps, mean), flush=True)
                running_loss = 0.0
        elapsed = time.perf_counter() - t0

        correct, total = evaluate(net, test_images, test_labels)
        if args.json:
            emit({"event": "epoch", "epoch": epoch, "test_accuracy": round(correct / total, 4),
                  "correct": correct, "total": total, "elapsed_s": round(elapsed, 3),
                  "train_samples_per_s": round(n / elapsed, 1)})
        else:
            print("Test accuracy: %.2f%% (%d/%d)" % (100.0 * correct / total, correct, total), flush=True)


if __name__ == "__main__":
    main()
