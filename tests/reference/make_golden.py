#!/usr/bin/python3
"""Regenerate the PyTorch golden fixtures in tests/fixtures/golden/.

The C engine's tests compare against these files.  They come from PyTorch's
classic CIFAR-10 tutorial network (SimpleCNN: conv 3->6 k5, maxpool 2, conv
6->16 k5, maxpool 2, fc 400->120->84->10, ReLU between layers), trained with
nn.CrossEntropyLoss() (mean) and optim.Adam(lr=0.001) with default settings.

Everything is deterministic: torch.manual_seed(1234) before building the
network, torch.set_num_threads(1), and numpy RandomState(1234) for the data.
No real CIFAR data is used: the 24 input records are random.

Files written (all binary files are raw little-endian float32 unless noted):

  records.bin          24 synthetic CIFAR-10 binary records (3073 bytes each:
                       1 label byte 0..9, then 1024 R, 1024 G, 1024 B bytes,
                       32x32 row-major), 24*3073 bytes, uint8.
  weights.bin          initial parameters of SimpleCNN under seed 1234, the
                       62,006 values concatenated in state_dict order
                       (conv1.weight (6,3,5,5), conv1.bias, conv2.weight
                       (16,6,5,5), conv2.bias, fc1.weight (120,400), fc1.bias,
                       fc2.weight (84,120), fc2.bias, fc3.weight (10,84),
                       fc3.bias), 248,024 bytes.
  logits.bin           (8,10) logits of records 0..7 at the initial weights.
  grads.bin            62,006 gradients (same layout as weights.bin) of the
                       mean cross-entropy loss on records 0..7 at the initial
                       weights.
  params_after_3.bin   parameters after 3 Adam steps: records 0..7, then
                       8..15, then 16..23 (zero_grad, forward, loss,
                       backward, step each time).
  activations.bin      intermediate activations of records 0..7 at the
                       initial weights, concatenated: conv1 after ReLU
                       (8,6,28,28), pool1 (8,6,14,14), conv2 after ReLU
                       (8,16,10,10), pool2 (8,16,5,5), fc1 after ReLU (8,120),
                       fc2 after ReLU (8,84).
  meta.json            torch version, hyper-parameters, losses, layouts.

Inputs are normalised exactly like ToTensor() + Normalize((0.5,)*3, (0.5,)*3):
t = pixels.float() / 255; x = (t - 0.5) / 0.5.

The script also checks that, for the 8 images of each step, no 2x2 max-pool
window has a tie at its maximum (which would make the gradient depend on the
tie-breaking rule) and that no pre-ReLU value lies within 1e-4 of zero (where
float rounding differences could flip the ReLU).  It prints a WARNING if so.
As a finer check it recomputes each batch in float64 from the same float32
weights and inputs and warns if any ReLU decision or pool choice differs;
meta.json ("checks") records the smallest |pre-ReLU| value, the smallest gap
between the top two values of a pool window, and the float32-vs-float64
error of each layer, i.e. how much rounding headroom a C implementation has.

Rerun from the repository root with Debian's PyTorch (python3-torch):

    /usr/bin/python3 tests/reference/make_golden.py

Output is bit-identical between runs with the same torch version (the
version used is recorded in meta.json).
"""

import copy
import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim

SEED = 1234
N_RECORDS = 24
BATCH = 8
STEPS = 3
LR = 0.001
RECORD_BYTES = 3073
KINK_EPS = 1e-4

OUT_DIR = os.path.normpath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "golden"))


# The network is the reference script's own, so the fixtures and the benchmark peer agree.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pytorch_train import SimpleCNN as ReferenceCNN  # noqa: E402


class SimpleCNN(ReferenceCNN):
    def forward_debug(self, x):
        """Same computation as forward(), also returning intermediates."""
        a = {}
        a["conv1_pre"] = self.conv1(x)
        a["conv1_relu"] = F.relu(a["conv1_pre"])
        a["pool1"] = self.pool(a["conv1_relu"])
        a["conv2_pre"] = self.conv2(a["pool1"])
        a["conv2_relu"] = F.relu(a["conv2_pre"])
        a["pool2"] = self.pool(a["conv2_relu"])
        flat = torch.flatten(a["pool2"], 1)
        a["fc1_pre"] = self.fc1(flat)
        a["fc1_relu"] = F.relu(a["fc1_pre"])
        a["fc2_pre"] = self.fc2(a["fc1_relu"])
        a["fc2_relu"] = F.relu(a["fc2_pre"])
        a["logits"] = self.fc3(a["fc2_relu"])
        return a


def make_records(rs):
    labels = rs.randint(0, 10, size=N_RECORDS).astype(np.uint8)
    pixels = rs.randint(0, 256, size=(N_RECORDS, 3072)).astype(np.uint8)
    recs = np.concatenate([labels[:, None], pixels], axis=1)
    assert recs.shape == (N_RECORDS, RECORD_BYTES)
    return recs


def decode(recs):
    labels = torch.from_numpy(recs[:, 0].astype(np.int64))
    pixels = np.ascontiguousarray(recs[:, 1:]).reshape(-1, 3, 32, 32)
    t = torch.from_numpy(pixels).float().div(255)
    x = (t - 0.5) / 0.5
    return x, labels


def flat_params(model):
    return torch.cat([p.detach().reshape(-1) for p in model.state_dict().values()])


def flat_grads(model):
    return torch.cat([p.grad.detach().reshape(-1) for p in model.parameters()])


def write_f32(name, t):
    arr = np.ascontiguousarray(t.detach().cpu().numpy().astype("<f4"))
    with open(os.path.join(OUT_DIR, name), "wb") as f:
        f.write(arr.tobytes())
    return arr.size


def pool_windows(x):
    n, c, h, w = x.shape
    return x.reshape(n, c, h // 2, 2, w // 2, 2).permute(0, 1, 2, 4, 3, 5).reshape(n, c, h // 2, w // 2, 4)


def pool_argmax(x):
    """Index of the maximum in each 2x2 window, and whether that maximum is > 0."""
    win = pool_windows(x)
    return win.argmax(-1), win.max(-1).values > 0


def check_pool_ties(x, what):
    """Ties at the maximum of a 2x2 window among positive values.

    Windows whose maximum is 0 (all inputs were clamped by ReLU) tie too, but
    the gradient there is 0 whichever element is picked, so they are harmless.
    Returns (exact ties, smallest gap between the top two of a window with a
    positive maximum)."""
    win = pool_windows(x)
    top2 = torch.topk(win, 2, dim=-1).values
    pos = top2[..., 0] > 0
    gap = (top2[..., 0] - top2[..., 1])[pos]
    ties = int((gap == 0).sum())
    min_gap = float(gap.min()) if gap.numel() else float("inf")
    zero_windows = int((~pos).sum())
    return ties, min_gap, zero_windows


def check_batch(model, x, label):
    """Prints warnings for pool ties and near-zero pre-ReLU values; returns a summary."""
    warnings = []
    summary = {}
    with torch.no_grad():
        a = model.forward_debug(x)
        # float64 recomputation from the same float32 weights and inputs: its
        # ReLU masks and pool choices should agree with the float32 ones, and
        # its difference shows the size of float32 rounding errors.
        a64 = copy.deepcopy(model).double().forward_debug(x.double())
    for name in ("conv1_pre", "conv2_pre", "fc1_pre", "fc2_pre"):
        summary[name + "_f32_vs_f64_max_abs"] = float((a[name].double() - a64[name]).abs().max())
        flips = int(((a[name] > 0) != (a64[name] > 0)).sum())
        if flips:
            warnings.append("%s: %s: %d ReLU decisions differ between float32 and float64" % (label, name, flips))
    for name in ("conv1_relu", "conv2_relu"):
        i32, pos = pool_argmax(a[name])
        i64, _ = pool_argmax(a64[name])
        flips = int(((i32 != i64) & pos).sum())
        if flips:
            warnings.append("%s: %s: %d pool choices differ between float32 and float64" % (label, name, flips))
    for name in ("conv1_relu", "conv2_relu"):
        ties, min_gap, zero_windows = check_pool_ties(a[name], name)
        summary[name + "_pool_min_gap"] = min_gap
        summary[name + "_pool_all_zero_windows"] = zero_windows
        if ties:
            warnings.append("%s: %s: %d 2x2 pool windows tie at a positive maximum" % (label, name, ties))
    for name in ("conv1_pre", "conv2_pre", "fc1_pre", "fc2_pre"):
        v = a[name]
        near = int((v.abs() < KINK_EPS).sum())
        summary[name + "_min_abs"] = float(v.abs().min())
        if near:
            warnings.append("%s: %s: %d pre-ReLU values within %g of zero (min |v| = %.3g)"
                            % (label, name, near, KINK_EPS, float(v.abs().min())))
    for w in warnings:
        print("WARNING: " + w, file=sys.stderr)
    return summary, warnings


def main():
    torch.set_num_threads(1)
    torch.manual_seed(SEED)
    os.makedirs(OUT_DIR, exist_ok=True)

    rs = np.random.RandomState(SEED)
    recs = make_records(rs)
    with open(os.path.join(OUT_DIR, "records.bin"), "wb") as f:
        f.write(recs.tobytes())
    x_all, y_all = decode(recs)

    model = SimpleCNN()
    criterion = nn.CrossEntropyLoss()

    sd = model.state_dict()
    params_layout = []
    off = 0
    for k, v in sd.items():
        params_layout.append({"name": k, "shape": list(v.shape), "offset": off, "count": v.numel()})
        off += v.numel()
    param_count = off
    assert param_count == 62006, param_count

    n_w = write_f32("weights.bin", flat_params(model))
    assert n_w == param_count

    # Forward pass of batch 1 at the initial weights.
    x0, y0 = x_all[:BATCH], y_all[:BATCH]
    with torch.no_grad():
        acts = model.forward_debug(x0)
        assert torch.equal(acts["logits"], model(x0))
        loss0 = float(criterion(acts["logits"], y0))
    write_f32("logits.bin", acts["logits"])

    act_names = [("conv1_relu", "conv1 output after ReLU"),
                 ("pool1", "max-pool of conv1_relu"),
                 ("conv2_relu", "conv2 output after ReLU"),
                 ("pool2", "max-pool of conv2_relu"),
                 ("fc1_relu", "fc1 output after ReLU"),
                 ("fc2_relu", "fc2 output after ReLU")]
    act_layout = []
    off = 0
    for name, desc in act_names:
        t = acts[name]
        act_layout.append({"name": name, "shape": list(t.shape), "offset": off,
                           "count": t.numel(), "description": desc})
        off += t.numel()
    write_f32("activations.bin", torch.cat([acts[n].reshape(-1) for n, _ in act_names]))

    # Tie / kink checks, for each step's batch at the weights it is run with.
    checks = {}
    all_warnings = []

    # Three Adam steps.
    optimizer = optim.Adam(model.parameters(), lr=LR)
    losses = []
    for step in range(STEPS):
        xb = x_all[step * BATCH:(step + 1) * BATCH]
        yb = y_all[step * BATCH:(step + 1) * BATCH]
        summary, warns = check_batch(model, xb, "step %d (records %d..%d)"
                                     % (step + 1, step * BATCH, (step + 1) * BATCH - 1))
        checks["step%d" % (step + 1)] = summary
        all_warnings += warns
        optimizer.zero_grad()
        outputs = model(xb)
        loss = criterion(outputs, yb)
        loss.backward()
        if step == 0:
            n_g = write_f32("grads.bin", flat_grads(model))
            assert n_g == param_count
        optimizer.step()
        losses.append(float(loss.item()))
    assert losses[0] == loss0, (losses[0], loss0)
    write_f32("params_after_3.bin", flat_params(model))

    labels = [int(v) for v in recs[:, 0]]
    meta = {
        "torch_version": torch.__version__,
        "batch": BATCH,
        "steps": STEPS,
        "lr": LR,
        "loss": loss0,
        "losses": losses,
        "param_count": param_count,
        "records": N_RECORDS,
        "files": {
            "records.bin": "uint8, 24 synthetic CIFAR-10 binary records of 3073 bytes "
                           "(label byte, then 1024 R, 1024 G, 1024 B, 32x32 row-major); random pixels, "
                           "numpy RandomState(1234)",
            "weights.bin": "float32 LE, 62006 initial parameters (torch.manual_seed(1234)) in state_dict "
                           "order, see 'params'",
            "logits.bin": "float32 LE, (8,10) logits of records 0..7 at the initial weights",
            "grads.bin": "float32 LE, 62006 gradients of the mean cross-entropy loss on records 0..7 "
                         "at the initial weights, same layout as weights.bin",
            "params_after_3.bin": "float32 LE, 62006 parameters after 3 Adam(lr=0.001) steps on records "
                                  "0..7, 8..15, 16..23, same layout as weights.bin",
            "activations.bin": "float32 LE, activations of records 0..7 at the initial weights, "
                               "concatenated as described in 'activations' (offsets in floats)",
            "meta.json": "this file",
        },
        "labels": labels,
        "params": params_layout,
        "activations": act_layout,
        "normalisation": "x = (pixel/255 - 0.5) / 0.5, float32",
        "checks": {"kink_eps": KINK_EPS, "warnings": all_warnings, "per_step": checks},
    }
    with open(os.path.join(OUT_DIR, "meta.json"), "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")

    print("wrote %s" % OUT_DIR)
    print("torch %s, loss %.6f, losses %s" % (torch.__version__, loss0, ["%.6f" % l for l in losses]))
    print("labels %s (%d classes)" % (labels, len(set(labels))))
    print("checks: %s" % ("%d warning(s)" % len(all_warnings) if all_warnings else "no ties, no kinks"))
    for k, v in checks.items():
        print("  %s: %s" % (k, ", ".join("%s=%.3g" % (kk, vv) for kk, vv in v.items())))


if __name__ == "__main__":
    main()
