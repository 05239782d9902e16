#!/usr/bin/python3
"""Optimizer and loss fixtures from torch.optim and nn.CrossEntropyLoss: tests/fixtures/optim/.

Regenerate from the repository root with Debian's PyTorch (python3-torch):

    /usr/bin/python3 tests/reference/make_optim_fixtures.py

optim.json: the tensors of a small net (conv 2->4 k3 pad 1, batch norm 4, linear 36->3: the
shapes of `conv(4, 3, padding=1) / batchnorm / relu / flatten / linear(3)` on 2x3x3 inputs), random
float32 starting values and three random gradients, then for each case 3 steps of a torch.optim
optimizer with its parameter groups: every group's learning rate at each step (as set on the
optimizer's param_groups before the step, the schedule applied), the parameters after each step,
and the optimizer state after the last (Adam's exp_avg and exp_avg_sq, SGD's momentum_buffer).
A frozen group's tensors get no gradient (grad None: torch skips them). "Decoupled" SGD weight
decay is not in torch.optim.SGD: the reference applies p.mul_(1 - lr * wd) before an SGD step
without weight decay, as torch.optim.AdamW does for Adam.

loss.json: 6 records of a 3x2x2 image and 5 classes through flatten -> linear(5), the linear
layer's weights, and for label smoothing 0, 0.1 and 0.2 the summed nn.CrossEntropyLoss and the
gradients of the mean loss.

Float32 arrays are stored as base64 of little-endian bytes.
"""

import base64
import json
import os

import numpy as np
import torch

OUT_DIR = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "optim"))

# (name, shape, kind): kind is what a group rule sees (conv/linear weight or bias, batch-norm parameter).
TENSORS = [
    ("conv1.weight", (4, 2, 3, 3), "weight"),
    ("conv1.bias", (4,), "bias"),
    ("bn1.weight", (4,), "batchnorm"),
    ("bn1.bias", (4,), "batchnorm"),
    ("fc1.weight", (3, 36), "weight"),
    ("fc1.bias", (3,), "bias"),
]
STEPS = 3
FACTORS = [1.0, 0.55, 0.2]  # a schedule's factor at each step


def b64(array):
    return base64.b64encode(np.ascontiguousarray(array, dtype="<f4").tobytes()).decode("ascii")


def flat(tensors):
    return np.concatenate([t.detach().numpy().reshape(-1) for t in tensors]).astype(np.float32)


def case(name, optimizer, options, groups, decoupled=False, frozen_from=None):
    """groups: [{tensors: [index], lr, weight_decay}]; frozen_from: {group: step} (0-based step
    from which the group gets no update)."""
    return {"name": name, "optimizer": optimizer, "options": options, "groups": groups, "decoupled": decoupled,
            "frozen_from": frozen_from or {}}


ALL = list(range(len(TENSORS)))
SPLIT = [
    {"tensors": [2, 3], "lr": 0.05 * 64, "weight_decay": 0.0},      # batch norm
    {"tensors": [1, 5], "lr": 0.05 * 2, "weight_decay": 5e-4},      # biases
    {"tensors": [0, 4], "lr": 0.05, "weight_decay": 5e-3},          # weights
]
CASES = [
    case("adam", "adam", {"betas": (0.9, 0.999), "eps": 1e-8}, [{"tensors": ALL, "lr": 1e-3, "weight_decay": 0.0}]),
    case("adam_weight_decay", "adam", {"betas": (0.8, 0.99), "eps": 1e-6}, [{"tensors": ALL, "lr": 3e-3, "weight_decay": 0.1}]),
    case("adamw", "adamw", {"betas": (0.9, 0.999), "eps": 1e-8}, [{"tensors": ALL, "lr": 1e-2, "weight_decay": 0.05}]),
    case("sgd", "sgd", {"momentum": 0.0, "dampening": 0.0, "nesterov": False}, [{"tensors": ALL, "lr": 0.1, "weight_decay": 0.0}]),
    case("sgd_weight_decay", "sgd", {"momentum": 0.0, "dampening": 0.0, "nesterov": False}, [{"tensors": ALL, "lr": 0.1, "weight_decay": 0.01}]),
    case("sgd_momentum", "sgd", {"momentum": 0.9, "dampening": 0.0, "nesterov": False}, [{"tensors": ALL, "lr": 0.05, "weight_decay": 0.0}]),
    case("sgd_momentum_dampening_wd", "sgd", {"momentum": 0.9, "dampening": 0.1, "nesterov": False},
         [{"tensors": ALL, "lr": 0.05, "weight_decay": 0.01}]),
    case("sgd_nesterov_wd", "sgd", {"momentum": 0.85, "dampening": 0.0, "nesterov": True}, [{"tensors": ALL, "lr": 0.02, "weight_decay": 5e-3}]),
    case("sgd_nesterov_decoupled", "sgd", {"momentum": 0.85, "dampening": 0.0, "nesterov": True},
         [{"tensors": ALL, "lr": 0.02, "weight_decay": 0.5}], decoupled=True),
    case("sgd_nesterov_groups", "sgd", {"momentum": 0.85, "dampening": 0.0, "nesterov": True}, SPLIT, frozen_from={1: 2}),
    case("sgd_nesterov_groups_decoupled", "sgd", {"momentum": 0.85, "dampening": 0.0, "nesterov": True}, SPLIT, decoupled=True),
    case("adamw_groups", "adamw", {"betas": (0.9, 0.999), "eps": 1e-8},
         [{"tensors": [0, 4], "lr": 1e-2, "weight_decay": 0.05}, {"tensors": [1, 2, 3, 5], "lr": 2e-2, "weight_decay": 0.0}]),
]


def run_case(c, start, grads):
    params = [torch.nn.Parameter(torch.from_numpy(s.copy())) for s in start]
    torch_groups = [{"params": [params[i] for i in g["tensors"]], "lr": g["lr"],
                     "weight_decay": 0.0 if c["decoupled"] else g["weight_decay"]} for g in c["groups"]]
    o = c["options"]
    if c["optimizer"] == "adam":
        opt = torch.optim.Adam(torch_groups, betas=o["betas"], eps=o["eps"])
    elif c["optimizer"] == "adamw":
        opt = torch.optim.AdamW(torch_groups, betas=o["betas"], eps=o["eps"])
    else:
        opt = torch.optim.SGD(torch_groups, lr=c["groups"][0]["lr"], momentum=o["momentum"], dampening=o["dampening"],
                              nesterov=o["nesterov"])
    lrs, after = [], []
    for step in range(STEPS):
        step_lrs = []
        for k, (g, tg) in enumerate(zip(c["groups"], opt.param_groups)):
            tg["lr"] = g["lr"] * FACTORS[step]  # a LambdaLR's initial_lr * factor
            step_lrs.append(tg["lr"])
        lrs.append(step_lrs)
        frozen = {k for k, s in c["frozen_from"].items() if step >= s}
        for k, g in enumerate(c["groups"]):
            for i in g["tensors"]:
                params[i].grad = None if k in frozen else torch.from_numpy(grads[step][i].copy())
        if c["decoupled"] and c["optimizer"] == "sgd":
            with torch.no_grad():
                for k, (g, tg) in enumerate(zip(c["groups"], opt.param_groups)):
                    if k in frozen:
                        continue
                    for p in tg["params"]:
                        p.mul_(1 - tg["lr"] * g["weight_decay"])
        opt.step()
        after.append(b64(flat(params)))
    state = {}
    for key in ("exp_avg", "exp_avg_sq", "momentum_buffer"):
        if any(opt.state[p].get(key) is not None for p in params):
            state[key] = b64(flat([opt.state[p][key] if opt.state[p].get(key) is not None else torch.zeros_like(p) for p in params]))
    return {**{k: v for k, v in c.items() if k != "options"}, "options": {k: list(v) if isinstance(v, tuple) else v for k, v in o.items()},
            "frozen_from": {str(k): v for k, v in c["frozen_from"].items()}, "lrs": lrs, "params_after": after, "state": state}


def optim_fixture():
    rng = np.random.RandomState(10)
    start = [rng.randn(*shape).astype(np.float32) * 0.5 for _, shape, _ in TENSORS]
    grads = [[rng.randn(*shape).astype(np.float32) * 0.1 for _, shape, _ in TENSORS] for _ in range(STEPS)]
    return {
        "torch": torch.__version__,
        "description": "conv(4, 3, padding=1)\nbatchnorm\nrelu\nflatten\nlinear(3)\n",
        "format": {"channels": 2, "height": 3, "width": 3, "classes": 3},
        "tensors": [{"name": n, "shape": list(s), "kind": k} for n, s, k in TENSORS],
        "start": b64(np.concatenate([s.reshape(-1) for s in start])),
        "grads": [b64(np.concatenate([g.reshape(-1) for g in step])) for step in grads],
        "cases": [run_case(c, start, grads) for c in CASES],
    }


def loss_fixture():
    rng = np.random.RandomState(11)
    batch, classes, shape = 6, 5, (3, 2, 2)
    pixels = rng.randint(0, 256, size=(batch, int(np.prod(shape)))).astype(np.uint8)
    labels = rng.randint(0, classes, size=batch).astype(np.uint8)
    records = np.concatenate([labels[:, None], pixels], axis=1)
    weight = (rng.randn(classes, pixels.shape[1]) * 0.8).astype(np.float32)
    bias = (rng.randn(classes) * 0.5).astype(np.float32)
    x = (torch.from_numpy(pixels.astype(np.float32)) / 255 - 0.5) / 0.5
    out = {"torch": torch.__version__, "description": "flatten\nlinear(classes)\n",
           "format": {"channels": shape[0], "height": shape[1], "width": shape[2], "classes": classes},
           "records": base64.b64encode(records.tobytes()).decode("ascii"), "weight": b64(weight), "bias": b64(bias), "cases": []}
    for smoothing in (0.0, 0.1, 0.2):
        w = torch.nn.Parameter(torch.from_numpy(weight.copy()))
        b = torch.nn.Parameter(torch.from_numpy(bias.copy()))
        logits = x @ w.t() + b
        target = torch.from_numpy(labels.astype(np.int64))
        loss_sum = torch.nn.CrossEntropyLoss(reduction="sum", label_smoothing=smoothing)(logits, target)
        loss = torch.nn.CrossEntropyLoss(label_smoothing=smoothing)(logits, target)
        loss.backward()
        # The same in float64, for the headroom.
        loss64 = torch.nn.CrossEntropyLoss(reduction="sum", label_smoothing=smoothing)(logits.double(), target)
        out["cases"].append({"label_smoothing": smoothing, "loss_sum": float(loss_sum), "loss_sum_f64": float(loss64),
                             "grad_weight": b64(w.grad.numpy()), "grad_bias": b64(b.grad.numpy())})
    return out


def main():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    os.makedirs(OUT_DIR, exist_ok=True)
    for name, data in (("optim.json", optim_fixture()), ("loss.json", loss_fixture())):
        with open(os.path.join(OUT_DIR, name), "w") as f:
            json.dump(data, f, indent=1)
            f.write("\n")
        print("wrote", os.path.join(OUT_DIR, name))


if __name__ == "__main__":
    main()
