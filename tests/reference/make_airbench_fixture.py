#!/usr/bin/python3
"""PyTorch fixture for airbench's pieces: the whitening conv, Dirac init and test-time augmentation.

Regenerate from the repository root with Debian's PyTorch (python3-torch):

    /usr/bin/python3 tests/reference/make_airbench_fixture.py

Writes tests/fixtures/airbench/: records.bin (48 CIFAR-style records of a label byte and 3x32x32
pixels: smooth, channel-correlated images so the patch matrix's eigenvalues are well apart),
tensors.bin (float32, laid out as meta.json's `tensors` says) and meta.json. What is in it:

- whiten.*: the whitening weights airbench's init_whitening_conv computes from the records
  (normalised with CIFAR-10's mean and std, every 2x2 patch, the uncentered patch matrix in
  float64, torch.linalg.eigh, eigenvalues descending, each eigenvector's largest-magnitude
  component made positive, scaled by 1/sqrt(eigenvalue + eps), stacked with their negatives);
- dirac_*: torch.nn.init.dirac_ on w[:w.size(1)] of a conv weight (airbench's Conv);
- tta_*: the logits of the small net of meta.json's `description` in eval mode (its state_dict
  in the tensors) on the records with no TTA, with flip, and with flip + translate, as airbench's
  infer() computes them.
"""

import json
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

OUT_DIR = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "airbench"))
N = 48
MEAN = [0.4914, 0.4822, 0.4465]
STD = [0.2470, 0.2435, 0.2616]
EPS = 5e-4

DESCRIPTION = """@ghost_batch 16
whiten: conv(24, 2, init='whiten', whiten_images=48)
gelu
conv(8, 3, padding=1, bias=false, init='dirac')
maxpool(2)
batchnorm(eps=1e-12, momentum=0.4, weight=frozen)
gelu
maxpool(5)
flatten
linear(classes, bias=false)
scale(0.1111111111111111)
"""


class Net(nn.Module):
    """The description above, with its state_dict names."""

    def __init__(self):
        super().__init__()
        self.whiten = nn.Conv2d(3, 24, 2)
        self.conv1 = nn.Conv2d(24, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8, eps=1e-12, momentum=0.4)
        self.fc1 = nn.Linear(72, 10, bias=False)

    def forward(self, x):
        x = F.gelu(self.whiten(x))
        x = self.bn1(F.max_pool2d(self.conv1(x), 2))
        x = F.max_pool2d(F.gelu(x), 5).flatten(1)
        return self.fc1(x) * 0.1111111111111111


def make_images(rng):
    """Smooth random fields mixed across channels, plus noise of a different size per channel."""
    base = rng.standard_normal((N, 3, 40, 40))
    kernel = np.outer(*(2 * [np.hanning(9)]))
    kernel /= kernel.sum()
    smooth = np.zeros((N, 3, 32, 32))
    for dy in range(9):
        for dx in range(9):
            smooth += kernel[dy, dx] * base[:, :, dy:dy + 32, dx:dx + 32]
    mix = np.array([[1.0, 0.3, 0.1], [0.5, 0.8, 0.2], [0.2, 0.4, 0.6]])
    mixed = np.einsum("dc,nchw->ndhw", mix, smooth) * 3.0
    noise = rng.standard_normal((N, 3, 32, 32)) * np.array([0.05, 0.1, 0.2])[None, :, None, None]
    x = 120 + 60 * (mixed + noise) + 10 * np.arange(3)[None, :, None, None]
    return np.clip(np.round(x), 0, 255).astype(np.uint8)


def normalise(pixels):
    x = torch.from_numpy(pixels).float() / 255
    return (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)


def whitening(x, k=2, eps=EPS):
    c = x.shape[1]
    patches = x.unfold(2, k, 1).unfold(3, k, 1).transpose(1, 3).reshape(-1, c, k, k).double()
    flat = patches.reshape(len(patches), -1)
    cov = flat.T @ flat / len(flat)
    values, vectors = torch.linalg.eigh(cov, UPLO="U")
    values, vectors = values.flip(0), vectors.T.flip(0)
    for row in vectors:
        if row[torch.argmax(row.abs())] < 0:
            row.neg_()
    scaled = vectors / torch.sqrt(values + eps)[:, None]
    return torch.cat((scaled, -scaled)).reshape(2 * len(values), c, k, k).float(), values


def dirac(out_channels, in_channels):
    w = torch.full((out_channels, in_channels, 3, 3), 7.0)
    torch.nn.init.dirac_(w[:w.size(1)])
    return w[:min(out_channels, in_channels)]


def tta(net, x, level):
    """airbench's infer(): 0 none, 1 mirror, 2 mirror + translate."""
    def mirror(inputs):
        return 0.5 * net(inputs) + 0.5 * net(inputs.flip(-1))
    if level == 0:
        return net(x)
    logits = mirror(x)
    if level == 1:
        return logits
    padded = F.pad(x, (1,) * 4, "reflect")
    translated = [mirror(padded[:, :, 0:32, 0:32]), mirror(padded[:, :, 2:34, 2:34])]
    return 0.5 * logits + 0.5 * torch.stack(translated).mean(0)


def main():
    rng = np.random.default_rng(10)
    torch.manual_seed(10)
    pixels = make_images(rng)
    labels = rng.integers(0, 10, N).astype(np.uint8)
    records = np.concatenate([labels[:, None], pixels.reshape(N, -1)], axis=1)
    x = normalise(pixels)
    weight, values = whitening(x)
    gaps = (values[:-1] - values[1:]) / values[:-1]

    net = Net().eval()
    with torch.no_grad():
        net.whiten.weight.copy_(weight)
        net.bn1.weight.uniform_(0.5, 1.5)
        net.bn1.bias.uniform_(-0.5, 0.5)
        net.bn1.running_mean.uniform_(-0.5, 0.5)
        net.bn1.running_var.uniform_(0.5, 2.0)
        logits = {f"tta_{name}": tta(net, x, level) for level, name in enumerate(["none", "flip", "flip-translate"])}

    tensors = {f"state:{k}": v for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    tensors.update({"whiten": weight, "dirac_8x24": dirac(8, 24), "dirac_32x8": dirac(32, 8), **logits})
    os.makedirs(OUT_DIR, exist_ok=True)
    records.tofile(os.path.join(OUT_DIR, "records.bin"))
    layout, offset, blobs = [], 0, []
    for name, t in tensors.items():
        a = t.detach().numpy().astype("<f4").ravel()
        layout.append({"name": name, "shape": list(t.shape), "offset": offset, "count": int(a.size)})
        offset += a.size
        blobs.append(a)
    np.concatenate(blobs).tofile(os.path.join(OUT_DIR, "tensors.bin"))
    meta = {
        "torch": torch.__version__, "records": N, "mean": MEAN, "std": STD, "eps": EPS, "description": DESCRIPTION,
        "eigenvalues": values.tolist(), "smallest_relative_eigen_gap": float(gaps.min()), "tensors": layout,
    }
    with open(os.path.join(OUT_DIR, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
    print(f"wrote {OUT_DIR}: eigenvalues {values.min():.3g}..{values.max():.3g}, smallest relative gap {gaps.min():.3g}")


if __name__ == "__main__":
    main()
