"""The PyTorch side of tests/pytorch-export.test.js: webtrain's model.py and safetensors files in
PyTorch, and back. Debian 12 has no safetensors package, so the format is read and written here
with numpy (a u64 header length, a JSON header, the tensors' bytes); users would call
safetensors.torch.load_file and save_file instead.

Reads a JSON list of jobs on stdin (one process, as importing torch is slow); each job is
  {"do": "load", "model_py": PATH, "weights": PATH, "pixels": PATH, "n": N, "logits": OUT}
    model.py's Model with webtrain's weights, on n images (uint8, N x C x H x W): eval logits;
  {"do": "save", "model_py": PATH, "seed": S, "weights": OUT, "pixels": PATH, "n": N, "logits": OUT}
    a Model made in PyTorch (seeded, with non-trivial batch-norm statistics), saved as
    safetensors, and its eval logits.
Logits are written as little-endian float32. Prints one JSON line per job: the state_dict keys.

  python3 tests/reference/export_check.py --fixture DIR MODEL_PY   writes the committed fixture
  instead: DIR/model.safetensors (saved from PyTorch) and DIR/torch_logits.bin, on DIR/pixels.bin.
"""

import json
import os
import struct
import sys
import types

import numpy as np
import torch

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "I32": np.int32, "F16": np.float16, "U8": np.uint8}


def read_safetensors(path):
    """{name: torch.Tensor} from a safetensors file, with numpy."""
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    header.pop("__metadata__", None)
    data = raw[8 + n:]
    out = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        array = np.frombuffer(data[begin:end], dtype=np.dtype(DTYPES[info["dtype"]]).newbyteorder("<"))
        out[name] = torch.from_numpy(array.reshape(info["shape"]).copy())
    return out


def write_safetensors(path, state, metadata=None):
    """A state_dict as safetensors, with numpy, laid out as safetensors.torch.save_file does:
    sorted by dtype size (largest first), then by name."""
    names = sorted(state, key=lambda k: (-state[k].element_size(), k))
    header, chunks, at = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name in names:
        t = state[name].detach().contiguous()
        dtype = {torch.float32: "F32", torch.int64: "I64"}[t.dtype]
        b = t.numpy().astype(t.numpy().dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [at, at + len(b)]}
        chunks.append(b)
        at += len(b)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(chunks))


def load_module(path):
    module = types.ModuleType("model")
    module.__file__ = path
    exec(compile(open(path).read(), path, "exec"), module.__dict__)
    return module


def pixels_of(path, n, shape):
    array = np.fromfile(path, dtype=np.uint8)[: n * int(np.prod(shape))]
    return torch.from_numpy(array.reshape((n,) + tuple(shape)).copy())


def logits_of(module, net, pixels):
    with torch.no_grad():
        return net.eval()(module.preprocess(pixels)).numpy().astype("<f4")


def made_in_pytorch(module, seed):
    """A Model as PyTorch would leave it after training: seeded weights, batch norms with
    statistics of their own (random means, variances and affine parameters, counts)."""
    torch.manual_seed(seed)
    net = module.Model()
    for m in net.modules():
        if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.num_batches_tracked.fill_(123)
            if m.affine:
                m.weight.data.uniform_(0.5, 1.5)
                m.bias.data.uniform_(-0.2, 0.2)
    return net


def run(job):
    module = load_module(job["model_py"])
    pixels = pixels_of(job["pixels"], job["n"], module.INPUT_SHAPE)
    if job["do"] == "load":
        net = module.Model()
        net.load_state_dict(read_safetensors(job["weights"]))  # strict: every key, every shape
    else:
        net = made_in_pytorch(module, job["seed"])
        write_safetensors(job["weights"], net.state_dict(), {"format": "pt"})
    logits_of(module, net, pixels).tofile(job["logits"])
    return list(net.state_dict().keys())


def main():
    torch.set_num_threads(1)
    if sys.argv[1:2] == ["--fixture"]:
        out, model_py = sys.argv[2], sys.argv[3]
        job = {"do": "save", "model_py": model_py, "seed": 5, "n": 64,
               "weights": os.path.join(out, "model.safetensors"), "pixels": os.path.join(out, "pixels.bin"),
               "logits": os.path.join(out, "torch_logits.bin")}
        run(job)
        return
    for job in json.load(sys.stdin):
        print(json.dumps(run(job)))


if __name__ == "__main__":
    main()
