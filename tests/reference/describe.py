"""Model descriptions for the PyTorch reference: build their JSON form, and the nn.Module for it.

The module comes from webtrain's own generator (web/pytorch-module.js, run by node through
tests/reference/model_py.mjs), so the fixtures check the same model.py that users download.

Until the description parser (web/model-description.js) is used here, the JSON form is built by
the small helpers below, which follow /work/spec/model-format.md: defaults filled in, automatic
names (a per-kind counter within each block level), dotted paths, and the line numbers of the
description text that `text()` renders (one layer per line, settings first).
"""

import json
import os
import subprocess
import types

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
MODEL_PY = os.path.join(ROOT, "tests", "reference", "model_py.mjs")

FORMAT = "webtrain-model/1"
DEFAULT_SETTINGS = {"ghost_batch": 8}

# Automatic name prefixes, from the spec.
AUTO_NAMES = {
    "conv": "conv", "linear": "fc", "batchnorm": "bn", "residual": "res", "relu": "relu",
    "gelu": "gelu", "maxpool": "pool", "avgpool": "avgpool", "globalavgpool": "gap",
    "globalmaxpool": "gmp", "dropout": "drop", "flatten": "flatten", "scale": "scale",
}

# Positional arguments of the short (lazy) forms, then defaults, as the spec lists them.
POSITIONAL = {
    "conv": ["out_channels", "kernel_size", "stride", "padding", "bias"],
    "linear": ["out_features", "bias"],
    "gelu": ["approximate"],
    "maxpool": ["kernel_size", "stride", "padding"],
    "avgpool": ["kernel_size", "stride", "padding"],
    "batchnorm": ["eps", "momentum", "affine"],
    "dropout": ["p"],
    "scale": ["factor"],
}
DEFAULTS = {
    "conv": {"in_channels": None, "stride": 1, "padding": 0, "bias": True, "init": "default", "whiten_images": 5000,
             "whiten_eps": 5e-4},
    "linear": {"in_features": None, "bias": True},
    "gelu": {"approximate": "none"},
    "maxpool": {"padding": 0},
    "avgpool": {"padding": 0},
    "batchnorm": {"num_features": None, "dims": None, "eps": 1e-5, "momentum": 0.1, "affine": True, "weight": "trainable"},
    "dropout": {"p": 0.5},
}
# Arguments the text does not need to spell out (the lazy form infers them).
IMPLICIT = {"in_channels", "in_features", "num_features", "dims"}


def layer(type_, *args, name=None, **kwargs):
    """A layer as the parser would give it, before names, paths and lines are assigned."""
    spec = dict(DEFAULTS.get(type_, {}))
    positional = POSITIONAL.get(type_, [])
    assert len(args) <= len(positional), (type_, args)
    spec.update(zip(positional, args))
    spec.update(kwargs)
    if type_ in ("maxpool", "avgpool") and "stride" not in spec:
        spec["stride"] = spec["kernel_size"]
    out = {"type": type_, "name": name}
    out.update(spec)
    return out


def residual(body, shortcut=(), name=None):
    return {"type": "residual", "name": name, "body": list(body), "shortcut": list(shortcut)}


def description(layers, **settings):
    """The JSON form (a dict) of a description made of these layers, with names, paths and lines."""
    s = dict(DEFAULT_SETTINGS)
    s.update(settings)
    line = [len(s)]  # settings take the first lines of text()

    def assign(level, prefix):
        explicit = {l["name"] for l in level if l["name"]}
        counters = {}
        out = []
        for l in level:
            l = dict(l)
            if not l["name"]:
                base = AUTO_NAMES[l["type"]]
                n = counters.get(base, 0) + 1
                while "%s%d" % (base, n) in explicit:
                    n += 1
                counters[base] = n
                l["name"] = "%s%d" % (base, n)
            l["path"] = prefix + l["name"]
            line[0] += 1
            l["line"] = line[0]
            if l["type"] == "residual":
                l["body"] = assign(l["body"], l["path"] + ".")
                if l["shortcut"]:
                    line[0] += 1  # the 'shortcut' line
                l["shortcut"] = assign(l["shortcut"], l["path"] + ".shortcut.")
                line[0] += 1  # the 'end' line
            out.append(l)
        return out

    return {"format": FORMAT, "settings": s, "layers": assign(layers, "")}


def _value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str) and v != "classes":
        return "'%s'" % v
    return repr(v) if isinstance(v, float) else str(v)


def text(desc):
    """The description text whose parse is `desc` (names are given only where not automatic)."""
    lines = ["@%s %s" % (k, _value(v)) for k, v in desc["settings"].items()]

    def render(level, depth, auto_level):
        pad = "  " * depth
        for l, auto in zip(level, auto_level):
            head = pad + ("" if l["name"] == auto["name"] else l["name"] + ": ")
            if l["type"] == "residual":
                lines.append(head + "residual")
                render(l["body"], depth + 1, auto["body"])
                if l["shortcut"]:
                    lines.append(pad + "shortcut")
                    render(l["shortcut"], depth + 1, auto["shortcut"])
                lines.append(pad + "end")
                continue
            positional = POSITIONAL.get(l["type"], [])
            defaults = dict(DEFAULTS.get(l["type"], {}))
            if l["type"] in ("maxpool", "avgpool"):
                defaults["stride"] = l["kernel_size"]
            # Required arguments by position, the others by keyword where not their default.
            args = [_value(l[key]) if key not in defaults else "%s=%s" % (key, _value(l[key]))
                    for key in positional if key not in defaults or l[key] != defaults[key]]
            lines.append(head + l["type"] + ("(%s)" % ", ".join(args) if args else ""))

    render(desc["layers"], 0, _auto_names(desc)["layers"])
    return "\n".join(lines) + "\n"


def _auto_names(desc):
    """desc with every layer renamed automatically (to tell which names text() must spell out)."""
    def strip(level):
        return [dict(l, name=None, body=strip(l["body"]), shortcut=strip(l["shortcut"]))
                if l["type"] == "residual" else dict(l, name=None) for l in level]
    return description(strip(desc["layers"]), **desc["settings"])


def model_py(desc, shape, classes, mean=0.5, std=0.5):
    """The text of model.py for desc and the data shape (C, H, W), from web/pytorch-module.js."""
    per = lambda v: ",".join(repr(float(x)) for x in (v if isinstance(v, (list, tuple)) else [v]))
    cmd = ["node", MODEL_PY, "-"] + [str(int(v)) for v in shape] + [str(classes), per(mean), per(std)]
    return subprocess.run(cmd, input=json.dumps(desc).encode(), stdout=subprocess.PIPE, check=True).stdout.decode()


def build(desc, shape, classes, mean=0.5, std=0.5):
    """The generated model.py imported as a module: build(...).Model(), build(...).preprocess."""
    source = model_py(desc, shape, classes, mean, std)
    module = types.ModuleType("webtrain_model")
    module.__file__ = "<model.py>"
    exec(compile(source, "<model.py>", "exec"), module.__dict__)
    module.SOURCE = source
    return module
