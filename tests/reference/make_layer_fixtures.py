#!/usr/bin/python3
"""Per-layer PyTorch fixtures, forward and backward, for every layer type: tests/fixtures/layers/.

Regenerate from the repository root with Debian's PyTorch (python3-torch) and node:

    /usr/bin/python3 tests/reference/make_layer_fixtures.py

The output is byte-identical between runs with the same torch version (recorded in each .json).
The format is described in tests/fixtures/layers/README.md.

Each case is a small description (one layer, or one residual block; flat-input layers follow a
flatten), run through the module that web/pytorch-module.js generates for it, on odd shapes in
float32 with a fixed seed per case: x, the state_dict before, y = net(x), a random upstream
gradient dy, dx and every parameter's gradient from y.backward(dy), and the batch-norm buffers
after the forward. Batch norm's weight, bias and running statistics start from random values
(not 1, 0, 0, 1) so that every term of the update shows. Each case is also recomputed in float64
from the same float32 inputs; its .json records the float32-vs-float64 error of every output
(how much rounding headroom an implementation has) and the smallest |ReLU input| in the case.
"""

import copy
import json
import os
import sys
import warnings
import zlib

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from describe import build, description, layer, residual, text  # noqa: E402

OUT_DIR = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "layers"))
IMAGE = (3, 5, 7, 9)      # batch 3, 5 channels, 7 x 9
SMALL = (3, 5, 2, 3)      # flattened to 30 features for linear and batchnorm 1d
CLASSES = 10              # unused by these descriptions (no 'classes'), needed by the generator


def case(name, layers, shape=IMAGE, mode="train", x="randn"):
    return {"name": name, "layers": layers, "shape": shape, "mode": mode, "x": x}


def bn_block(stride, out_channels, projection):
    body = [layer("conv", out_channels, 3, stride=stride, padding=1, bias=False), layer("batchnorm"), layer("relu"),
            layer("conv", out_channels, 3, padding="same", bias=False), layer("batchnorm")]
    shortcut = [layer("conv", out_channels, 1, stride=stride, bias=False), layer("batchnorm")] if projection else []
    return [residual(body, shortcut)]


CASES = [
    case("conv_k3", [layer("conv", 4, 3)]),
    case("conv_k3_s2_p1", [layer("conv", 4, 3, stride=2, padding=1)]),
    case("conv_k3_same", [layer("conv", 4, 3, padding="same")]),
    case("conv_k5_same", [layer("conv", 4, 5, padding="same")]),
    case("conv_k4_same", [layer("conv", 4, 4, padding="same")]),  # even kernel: PyTorch pads 1 before, 2 after
    case("conv_k3_nobias", [layer("conv", 4, 3, bias=False)]),
    case("conv_k1", [layer("conv", 4, 1)]),
    case("conv_k1_s2", [layer("conv", 4, 1, stride=2, bias=False)]),
    case("linear", [layer("flatten"), layer("linear", 7)], SMALL),
    case("linear_nobias", [layer("flatten"), layer("linear", 7, bias=False)], SMALL),
    case("relu", [layer("relu")]),
    case("gelu", [layer("gelu")]),
    case("gelu_tanh", [layer("gelu", approximate="tanh")]),
    case("maxpool_k2", [layer("maxpool", 2)]),
    case("maxpool_k3_s2_p1", [layer("maxpool", 3, stride=2, padding=1)]),
    case("avgpool_k2", [layer("avgpool", 2)]),
    case("avgpool_k3_s2_p1", [layer("avgpool", 3, stride=2, padding=1)]),
    case("globalavgpool", [layer("globalavgpool")]),
    case("globalmaxpool", [layer("globalmaxpool")]),
    case("bn2d_train", [layer("batchnorm")], x="shifted"),
    case("bn2d_train_noaffine", [layer("batchnorm", affine=False)], x="shifted"),
    case("bn2d_train_momentum0.4", [layer("batchnorm", momentum=0.4)], x="shifted"),
    # Channel 0 has variance ~1e-10, so eps=1e-12 is not negligible there.
    case("bn2d_train_eps1e-12", [layer("batchnorm", eps=1e-12)], x="tiny_channel"),
    # Mean 50, std 0.5: E[x^2] - E[x]^2 in float32 loses ~4 digits here; a two-pass variance does not.
    case("bn2d_train_offset50", [layer("batchnorm")], x="offset50"),
    case("bn2d_eval", [layer("batchnorm")], mode="eval", x="shifted"),
    case("bn2d_eval_noaffine", [layer("batchnorm", affine=False)], mode="eval", x="shifted"),
    case("bn1d_train", [layer("flatten"), layer("batchnorm")], SMALL, x="shifted"),
    case("bn1d_train_noaffine_momentum0.4", [layer("flatten"), layer("batchnorm", momentum=0.4, affine=False)],
         SMALL, x="shifted"),
    case("bn1d_eval", [layer("flatten"), layer("batchnorm")], SMALL, mode="eval", x="shifted"),
    case("dropout_eval", [layer("dropout", 0.3)], mode="eval"),
    case("flatten", [layer("flatten")]),
    case("scale", [layer("scale", 0.37)]),
    case("scale_negative", [layer("scale", -2.5)]),
    case("residual_projection", bn_block(2, 6, True)),
    case("residual_identity", bn_block(1, 5, False)),
    case("residual_projection_eval", bn_block(2, 6, True), mode="eval"),
]


def make_input(kind, shape):
    x = torch.randn(shape)
    if kind == "shifted":
        x = x * 2 + 0.5
    elif kind == "tiny_channel":
        x[:, 0] *= 1e-5
    elif kind == "offset50":
        x = x * 0.5 + 50
    else:
        assert kind == "randn", kind
    return x


def randomise_batchnorm(net):
    """Non-trivial affine parameters and running statistics, and a step count that is not 0."""
    for m in net.modules():
        if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            n = m.num_features
            with torch.no_grad():
                if m.affine:
                    m.weight.copy_(torch.rand(n) + 0.5)
                    m.bias.copy_(torch.randn(n) * 0.5)
                m.running_mean.copy_(torch.randn(n) * 0.5)
                m.running_var.copy_(torch.rand(n) * 1.5 + 0.5)
                m.num_batches_tracked.fill_(5)


def run(net, x, dy, mode):
    """y, dx, gradients, buffers after, and the inputs of every ReLU."""
    net.train(mode == "train")
    relu_inputs = []
    hooks = [m.register_forward_hook(lambda m, i, o: relu_inputs.append(i[0].detach()))
             for m in net.modules() if isinstance(m, torch.nn.ReLU)]
    x = x.clone().requires_grad_(True)
    y = net(x)
    for h in hooks:
        h.remove()
    if dy is None:
        dy = torch.randn(y.shape)
    y.backward(dy.to(y.dtype))
    grads = [(k, p.grad.detach().clone()) for k, p in net.named_parameters()]
    buffers = [(k, v.detach().clone()) for k, v in net.state_dict().items() if k.rsplit(".", 1)[1] in
               ("running_mean", "running_var", "num_batches_tracked")]
    return y.detach(), dy, x.grad.detach(), grads, buffers, relu_inputs


def rel_l2(a, b):
    a, b = a.double(), b.double()
    return float((a - b).norm() / max(float(b.norm()), 1e-300))


def make_case(c, torch_version):
    name = c["name"]
    torch.manual_seed(zlib.crc32(name.encode()))   # a seed per case: adding a case changes no other
    desc = description(c["layers"])
    shape = c["shape"]
    module = build(desc, shape[1:], CLASSES)
    net = module.Model()
    randomise_batchnorm(net)
    x = make_input(c["x"], shape)
    if any(l["type"] in ("maxpool", "globalmaxpool") for l in desc["layers"]):
        assert torch.unique(x).numel() == x.numel(), "%s: input values repeat (max-pool ties)" % name
    before = [(k, v.detach().clone()) for k, v in net.state_dict().items()]

    net64 = copy.deepcopy(net).double()
    y, dy, dx, grads, after, relu_in = run(net, x, None, c["mode"])
    y64, _, dx64, grads64, after64, relu_in64 = run(net64, x.double(), dy, c["mode"])

    flips = sum(int(((a > 0) != (b > 0)).sum()) for a, b in zip(relu_in, relu_in64))
    assert flips == 0, "%s: %d ReLU decisions differ between float32 and float64" % (name, flips)
    checks = {"f32_vs_f64_rel_l2": {"y": rel_l2(y, y64), "dx": rel_l2(dx, dx64)}}
    for (k, g), (_, g64) in zip(grads, grads64):
        checks["f32_vs_f64_rel_l2"]["grad:" + k] = rel_l2(g, g64)
    for (k, b), (_, b64) in zip(after, after64):
        checks["f32_vs_f64_rel_l2"]["after:" + k] = rel_l2(b, b64)
    if relu_in:
        checks["min_abs_relu_input"] = min(float(t.abs().min()) for t in relu_in)

    tensors = [("x", x)] + before + [("y", y), ("dy", dy), ("dx", dx)]
    tensors += [("grad:" + k, g) for k, g in grads] + [("after:" + k, b) for k, b in after]
    layout, chunks, offset = [], [], 0
    for tname, t in tensors:
        arr = np.ascontiguousarray(t.detach().numpy().astype("<f4")).reshape(-1)
        assert np.all(np.isfinite(arr)), (name, tname)
        layout.append({"name": tname, "shape": list(t.shape), "offset": offset, "count": int(arr.size)})
        chunks.append(arr)
        offset += arr.size
    with open(os.path.join(OUT_DIR, name + ".bin"), "wb") as f:
        f.write(np.concatenate(chunks).tobytes())
    meta = {
        "case": name,
        "torch_version": torch_version,
        "description": desc,
        "description_text": text(desc),
        "input_shape": list(shape),
        "mode": c["mode"],
        "floats": int(offset),
        "tensors": layout,
        "checks": checks,
    }
    with open(os.path.join(OUT_DIR, name + ".json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")
    return offset


def main():
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", message="Using padding='same' with even kernel")
    os.makedirs(OUT_DIR, exist_ok=True)
    names = [c["name"] for c in CASES]
    assert len(set(names)) == len(names)
    total = 0
    for c in CASES:
        n = make_case(c, torch.__version__)
        total += n
        print("%-34s %-5s %7d floats" % (c["name"], c["mode"], n))
    print("wrote %d cases, %d floats, to %s (torch %s)" % (len(CASES), total, OUT_DIR, torch.__version__))


if __name__ == "__main__":
    main()
