#!/usr/bin/env python3
"""An int8 model file of swift-distill (a `quantize` stage's student-quantize.h5) run in numpy
alone, on the MNIST-format test split (MNIST, Fashion-MNIST): prints its test accuracy, which
`distill eval FILE` prints too (README, "int8 inference"). Needs numpy and h5py.

    python3 scripts/int8_numpy.py RUN/student-quantize.h5 PATH/TO/t10k-images-idx3-ubyte.gz PATH/TO/t10k-labels-idx1-ubyte.gz
"""
import gzip
import json
import sys

import h5py
import numpy as np


def idx(path):
    with (gzip.open if path.endswith(".gz") else open)(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)


model, images, labels = sys.argv[1:4]
g = h5py.File(model, "r")["student"]
layers = json.loads(g.attrs["architecture"])["model"]["layers"]
quantized = json.loads(g.attrs["quantization"])["layers"]
x = idx(images).reshape(-1, 784).astype(np.float32) / np.float32(255)  # features as distill reads them
for i, layer in enumerate(layers):
    kind = next(iter(layer))
    if kind == "flatten":
        x = x.reshape(len(x), -1)
    elif kind == "relu":
        x = np.maximum(x, np.float32(0))
    elif kind == "dropout":
        pass  # evaluation mode
    elif kind == "linear" and i in quantized:
        scale = g[f"{i}.input_scale"][()].astype(np.float32)
        zero = int(g[f"{i}.input_zero_point"][()])
        q = np.clip(np.rint(x * (np.float32(1) / scale)) + zero, 0, 255).astype(np.int32)
        acc = (q - zero) @ g[f"{i}.weight"][()].astype(np.int32).T  # exact int32 sums
        x = acc.astype(np.float32) * (g[f"{i}.weight_scale"][()] * scale) + g[f"{i}.bias"][()]
    elif kind == "linear":
        x = x @ g[f"{i}.weight"][()].T + g[f"{i}.bias"][()]
    else:
        sys.exit(f"layer {i}: {kind} is not handled by this snippet")
print(f"int8 test accuracy {100 * np.mean(x.argmax(1) == idx(labels)):.2f}%")
