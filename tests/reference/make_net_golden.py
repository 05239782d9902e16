#!/usr/bin/python3
"""Whole-net PyTorch golden fixtures for described nets: tests/fixtures/net-resnet/ and net-simplecnn/.

Regenerate from the repository root with Debian's PyTorch (python3-torch) and node:

    /usr/bin/python3 tests/reference/make_net_golden.py

The output is byte-identical between runs with the same torch version (recorded in meta.json).

In the style of make_golden.py: each net is the module that web/pytorch-module.js generates for
its description (model.json, text in model.txt, the module itself in model.py), in train mode,
on 24 synthetic CIFAR-10 records normalised with mean 0.5 and std 0.5 through the module's own
preprocess(). Step s (1..3) is one Adam(lr=1e-3) step on records 8(s-1)..8s-1 with the mean
cross-entropy loss; batch norm takes its statistics over those 8 images, which is one ghost
batch (@ghost_batch 8), i.e. PyTorch's BatchNorm2d exactly. Written:

  records.bin              24 records of 3073 bytes (label, 1024 R, 1024 G, 1024 B), uint8
  weights.bin              the initial state_dict (parameters and batch-norm buffers, in
                           state_dict order, num_batches_tracked as a float), float32 LE
  logits.bin               (8, 10) logits of step 1's forward (records 0..7, train mode)
  grads.bin                the gradients of step 1's loss, named_parameters() order
  params_after_3.bin       the state_dict after 3 steps (running statistics updated 3 times)
  logits_eval_after_3.bin  (8, 10) eval-mode logits of records 0..7 after the 3 steps
  meta.json                losses, labels, the layouts ("params": the state_dict, "grads")

net-resnet is a ResNet-style net with batch norm, from initial weights drawn by PyTorch's default
initialisation under torch.manual_seed(2024) and records from numpy RandomState(2024).

net-simplecnn is the seed's SimpleCNN written as a description. It starts from make_golden.py's
weights and records (tests/fixtures/golden/), and this script asserts that the generated module
reproduces tests/fixtures/golden/ bit for bit (logits, loss, gradients, the 3 steps): the
generated module is the hand-written SimpleCNN. Its meta.json therefore points at the golden
files instead of copying them; only model.*, logits_eval_after_3.bin and meta.json are its own.

tests/fixtures/every-layer/ holds only a description (model.json, model.txt) with every layer
type and a nested residual block, and its model.py, for tests of the module generator and the
engine's planning; it has no PyTorch values (its dropout would need PyTorch's masks).
"""

import copy
import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.optim as optim

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from describe import build, description, layer, residual, text  # noqa: E402
import make_golden  # noqa: E402  (its records, decode and constants; it has a __main__ guard)

FIXTURES = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures"))
GOLDEN = os.path.join(FIXTURES, "golden")
SHAPE = (3, 32, 32)
CLASSES = 10
MEAN = STD = 0.5
BATCH = 8
STEPS = 3
LR = 1e-3
RESNET_SEED = 2027  # no ReLU input within 1e-6 of zero in the 3 steps (2024 had one at 1.8e-8: float32 rounding flips such a gate)
KINK_EPS = 1e-4
OWN_FILES = {"records": "records.bin", "weights": "weights.bin", "logits": "logits.bin", "grads": "grads.bin",
             "params_after_3": "params_after_3.bin"}


def resnet_description():
    def block(channels, stride):
        body = [layer("conv", channels, 3, stride=stride, padding=1, bias=False), layer("batchnorm"), layer("relu"),
                layer("conv", channels, 3, padding=1, bias=False), layer("batchnorm")]
        shortcut = [layer("conv", channels, 1, stride=stride, bias=False), layer("batchnorm")] if stride != 1 else []
        return [residual(body, shortcut), layer("relu")]

    return description([layer("conv", 16, 3, padding=1, bias=False), layer("batchnorm"), layer("relu")]
                       + block(16, 1) + block(32, 2) + block(64, 2)
                       + [layer("globalavgpool"), layer("flatten"), layer("linear", "classes")], ghost_batch=8)


def simplecnn_description():
    return description([layer("conv", 6, 5), layer("relu"), layer("maxpool", 2),
                        layer("conv", 16, 5), layer("relu"), layer("maxpool", 2),
                        layer("flatten"), layer("linear", 120), layer("relu"),
                        layer("linear", 84), layer("relu"), layer("linear", "classes")])


def every_layer_description():
    """Every layer type and option kind once, with a nested residual block (tests/fixtures/every-layer/)."""
    return description([
        layer("conv", 8, 3, padding=1), layer("batchnorm"), layer("relu"),
        layer("conv", 8, 3, padding="same", bias=False), layer("batchnorm", momentum=0.4, affine=False),
        layer("gelu"), layer("maxpool", 2),
        residual([layer("conv", 16, 3, stride=2, padding=1, bias=False), layer("batchnorm"), layer("relu"),
                  layer("conv", 16, 3, padding=1, bias=False), layer("batchnorm")],
                 [layer("conv", 16, 1, stride=2, bias=False), layer("batchnorm")]),
        residual([layer("gelu", approximate="tanh"), residual([layer("conv", 16, 1)]), layer("scale", 0.5)]),
        layer("avgpool", 3, stride=2, padding=1), layer("dropout", 0.25), layer("globalmaxpool"),
        layer("globalavgpool"), layer("flatten"), layer("linear", 32), layer("batchnorm", eps=1e-3),
        layer("relu"), layer("linear", "classes", bias=False, name="head"),
    ], ghost_batch=16)


def load_f32(path):
    return torch.from_numpy(np.fromfile(path, dtype="<f4"))


def flat_state(net):
    return torch.cat([v.detach().reshape(-1).float() for v in net.state_dict().values()])


def flat_grads(net):
    return torch.cat([p.grad.detach().reshape(-1) for p in net.parameters()])


def layout(named, buffers=None):
    out, offset = [], 0
    for name, t in named:
        entry = {"name": name, "shape": list(t.shape), "offset": offset, "count": t.numel()}
        if buffers is not None:
            entry["buffer"] = name in buffers
        out.append(entry)
        offset += t.numel()
    return out


def set_state(net, flat):
    """Loads a flat float32 state_dict (as in weights.bin) into net."""
    state, i = {}, 0
    for k, v in net.state_dict().items():
        state[k] = flat[i:i + v.numel()].reshape(v.shape).to(v.dtype)
        i += v.numel()
    assert i == flat.numel(), (i, flat.numel())
    net.load_state_dict(state)


def inputs(module, recs):
    """The module's preprocess() on the records' pixels, checked against webtrain's decode rounding."""
    pixels = torch.from_numpy(np.ascontiguousarray(recs[:, 1:]).reshape(-1, *SHAPE))
    x = module.preprocess(pixels)
    p = np.ascontiguousarray(recs[:, 1:]).reshape(-1, *SHAPE).astype(np.float32)
    want = (p / np.float32(255) - np.float32(MEAN)) / np.float32(STD)   # ((float)p / 255.0f - mean) / std
    assert x.dtype == torch.float32 and np.array_equal(x.numpy(), want), "preprocess rounds differently"
    assert torch.equal(x, make_golden.decode(recs)[0]), "preprocess differs from make_golden.decode"
    return x, torch.from_numpy(recs[:, 0].astype(np.int64))


def relu_checks(net, x, y, label):
    """Near-zero ReLU inputs, and ReLU decisions that float64 would take differently (warnings),
    plus the float32-vs-float64 error of the logits and of every gradient of step 1."""
    def run(model, xx):
        seen = []
        hooks = [m.register_forward_hook(lambda m, i, o: seen.append(i[0].detach()))
                 for m in model.modules() if isinstance(m, nn.ReLU)]
        model.zero_grad()
        logits = model(xx)
        nn.CrossEntropyLoss()(logits, y).backward()
        for h in hooks:
            h.remove()
        return logits.detach(), seen, [p.grad.detach().clone() for p in model.parameters()]

    net32, net64 = copy.deepcopy(net), copy.deepcopy(net).double()
    logits32, relu32, grads32 = run(net32, x)
    logits64, relu64, grads64 = run(net64, x.double())
    rel = lambda a, b: float((a.double() - b).norm() / b.norm())
    near = sum(int((t.abs() < KINK_EPS).sum()) for t in relu32)
    flips = sum(int(((a > 0) != (b > 0)).sum()) for a, b in zip(relu32, relu64))
    warnings = []
    if near:
        warnings.append("%s: %d ReLU inputs within %g of zero" % (label, near, KINK_EPS))
    if flips:
        warnings.append("%s: %d ReLU decisions differ between float32 and float64" % (label, flips))
    for w in warnings:
        print("WARNING: " + w, file=sys.stderr)
    summary = {"min_abs_relu_input": min(float(t.abs().min()) for t in relu32),
               "logits_f32_vs_f64_rel_l2": rel(logits32, logits64),
               "grads_f32_vs_f64_rel_l2_max": max(rel(a, b) for a, b in zip(grads32, grads64))}
    return summary, warnings


def train(net, x_all, y_all):
    """Step 1's logits, loss and gradients, the 3 losses, and the eval logits after the steps."""
    net.train()
    optimizer = optim.Adam(net.parameters(), lr=LR)
    criterion = nn.CrossEntropyLoss()
    losses, checks, warnings = [], {}, []
    for step in range(STEPS):
        xb, yb = x_all[step * BATCH:(step + 1) * BATCH], y_all[step * BATCH:(step + 1) * BATCH]
        summary, warns = relu_checks(net, xb, yb, "step %d" % (step + 1))
        checks["step%d" % (step + 1)] = summary
        warnings += warns
        optimizer.zero_grad()
        logits = net(xb)
        loss = criterion(logits, yb)
        loss.backward()
        if step == 0:
            first = (logits.detach().clone(), float(loss), flat_grads(net))
        optimizer.step()
        losses.append(float(loss))
    net.eval()
    with torch.no_grad():
        eval_logits = net(x_all[:BATCH])
    return first, losses, eval_logits, checks, warnings


def write_f32(directory, name, t):
    np.ascontiguousarray(t.detach().numpy().astype("<f4")).tofile(os.path.join(directory, name))


def write_description(directory, desc, module):
    with open(os.path.join(directory, "model.json"), "w") as f:
        json.dump(desc, f, indent=1)
        f.write("\n")
    with open(os.path.join(directory, "model.txt"), "w") as f:
        f.write(text(desc))
    with open(os.path.join(directory, "model.py"), "w") as f:
        f.write(module.SOURCE)


def make(name, desc, records_path, weights_path, files, recs=None, init_seed=None):
    """Runs one net and writes its directory; returns what was computed (for the golden check)."""
    directory = os.path.join(FIXTURES, name)
    os.makedirs(directory, exist_ok=True)
    module = build(desc, SHAPE, CLASSES, MEAN, STD)
    if init_seed is not None:
        torch.manual_seed(init_seed)
    net = module.Model()
    if weights_path is not None:
        set_state(net, load_f32(weights_path))
    if recs is None:
        recs = np.fromfile(records_path, dtype=np.uint8).reshape(-1, make_golden.RECORD_BYTES)
    x_all, y_all = inputs(module, recs)
    initial = flat_state(net)
    state_names = list(net.state_dict().items())
    buffers = {k for k, _ in net.named_buffers()}
    (logits, loss, grads), losses, eval_logits, checks, warnings = train(net, x_all, y_all)
    after = flat_state(net)

    write_description(directory, desc, module)
    for key, t in (("weights", initial), ("logits", logits), ("grads", grads), ("params_after_3", after)):
        if files[key] == OWN_FILES[key]:
            write_f32(directory, files[key], t)
    if files["records"] == OWN_FILES["records"]:
        recs.tofile(os.path.join(directory, "records.bin"))
    write_f32(directory, "logits_eval_after_3.bin", eval_logits)

    meta = {
        "net": name,
        "torch_version": torch.__version__,
        "batch": BATCH,
        "steps": STEPS,
        "lr": LR,
        "optimizer": "torch.optim.Adam(lr=0.001), defaults otherwise (betas 0.9, 0.999, eps 1e-8)",
        "mode": "train (batch norm: statistics over each step's 8 images = one ghost batch)",
        "ghost_batch": desc["settings"]["ghost_batch"],
        "loss": loss,
        "losses": losses,
        "records": int(recs.shape[0]),
        "labels": [int(v) for v in recs[:, 0]],
        "data_shape": list(SHAPE),
        "classes": CLASSES,
        "normalisation": "x = (pixel/255 - 0.5) / 0.5, float32 (model.py's preprocess)",
        "param_count": sum(p.numel() for p in net.parameters()),
        "state_count": int(initial.numel()),
        "files": dict(files, logits_eval_after_3="logits_eval_after_3.bin", description="model.json",
                      description_text="model.txt", module="model.py"),
        "file_formats": {
            "records": "uint8 CIFAR-10 records of 3073 bytes (label, 1024 R, 1024 G, 1024 B, 32x32 row-major)",
            "weights": "float32 LE, the initial state_dict in order (see 'params'; buffers included)",
            "logits": "float32 LE, (8, 10) logits of records 0..7 in step 1's train-mode forward",
            "grads": "float32 LE, gradients of step 1's mean cross-entropy loss (see 'grads')",
            "params_after_3": "float32 LE, the state_dict after 3 Adam steps (layout 'params')",
            "logits_eval_after_3": "float32 LE, (8, 10) eval-mode logits of records 0..7 after the 3 steps",
        },
        "params": layout(state_names, buffers),
        "grads": layout(list(net.named_parameters())),
        "checks": {"kink_eps": KINK_EPS, "warnings": warnings, "per_step": checks},
    }
    with open(os.path.join(directory, "meta.json"), "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    print("%s: %d parameters, %d state floats, loss %.6f, losses %s, %d warning(s)"
          % (name, meta["param_count"], meta["state_count"], loss, ["%.6f" % l for l in losses], len(warnings)))
    return {"logits": logits, "loss": loss, "grads": grads, "losses": losses, "after": after}


def check_simplecnn(got):
    """The generated SimpleCNN must reproduce make_golden.py's fixtures bit for bit."""
    with open(os.path.join(GOLDEN, "meta.json")) as f:
        golden = json.load(f)
    assert got["loss"] == golden["loss"], (got["loss"], golden["loss"])
    assert got["losses"] == golden["losses"], (got["losses"], golden["losses"])
    for key, file in (("logits", "logits.bin"), ("grads", "grads.bin"), ("after", "params_after_3.bin")):
        want = load_f32(os.path.join(GOLDEN, file))
        assert torch.equal(got[key].reshape(-1), want), "%s differs from tests/fixtures/golden/%s" % (key, file)
    print("net-simplecnn: the generated module reproduces tests/fixtures/golden/ bit for bit")


def main():
    torch.set_num_threads(1)
    every = every_layer_description()
    directory = os.path.join(FIXTURES, "every-layer")
    os.makedirs(directory, exist_ok=True)
    write_description(directory, every, build(every, SHAPE, CLASSES, MEAN, STD))

    resnet_recs = make_golden.make_records(np.random.RandomState(RESNET_SEED))
    make("net-resnet", resnet_description(), None, None, OWN_FILES, recs=resnet_recs, init_seed=RESNET_SEED)

    golden = {k: "../golden/" + v for k, v in OWN_FILES.items()}
    got = make("net-simplecnn", simplecnn_description(), os.path.join(GOLDEN, "records.bin"),
               os.path.join(GOLDEN, "weights.bin"), golden)
    check_simplecnn(got)


if __name__ == "__main__":
    main()
