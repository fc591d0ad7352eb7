#!/usr/bin/env python3
"""An int8 model file of swift-distill (a `quantize` stage's student-quantize.h5) run in numpy
alone, on the MNIST-format test split (MNIST, Fashion-MNIST): prints its test accuracy, which
`distill eval FILE` prints too (README, "int8 inference"). Linear and conv2d layers (int8 or
float), batch norm, ReLU, max pooling, flatten. Needs numpy and h5py.

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


def quantized_input(x, i):
    """The layer's input quantized to uint8 per tensor, as int32 with the zero point taken off."""
    scale = g[f"{i}.input_scale"][()].astype(np.float32)
    zero = int(g[f"{i}.input_zero_point"][()])
    # 127 for 7-bit activations (reduce_range: files made on CPUs without VNNI); absent = 255.
    quant_max = int(g[f"{i}.input_quant_max"][()]) if f"{i}.input_quant_max" in g else 255
    q = np.clip(np.rint(x * (np.float32(1) / scale)) + zero, 0, quant_max).astype(np.int32)
    return q - zero, scale


def conv2d(x, w, stride, padding):
    """Cross-correlation of x [N, C, H, W] with w [O, C, k, k], zero padding, as one matrix
    product over the windows. Integer inputs are summed in float64, exact for int8 products
    (every sum stays far below 2^53), so that BLAS does the work."""
    k = w.shape[2]
    dtype = np.float64 if np.issubdtype(x.dtype, np.integer) else np.float32
    x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding))).astype(dtype)
    windows = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(2, 3))[:, :, ::stride, ::stride]
    n, c, h, wd = windows.shape[:4]
    columns = windows.transpose(0, 2, 3, 1, 4, 5).reshape(n * h * wd, c * k * k)
    y = columns @ w.reshape(len(w), -1).astype(dtype).T
    return y.reshape(n, h, wd, len(w)).transpose(0, 3, 1, 2)


def forward(x):
    for i, layer in enumerate(layers):
        kind, settings = next(iter(layer.items()))
        if kind == "flatten":
            x = x.reshape(len(x), -1)
        elif kind == "relu":
            x = np.maximum(x, np.float32(0))
        elif kind == "dropout":
            pass  # evaluation mode
        elif kind == "max_pool":
            n, c, h, w = x.shape
            x = x[:, :, : h - h % settings, : w - w % settings].reshape(n, c, h // settings, settings, w // settings, settings).max(axis=(3, 5))
        elif kind == "batch_norm":
            shape = (1, -1, 1, 1) if x.ndim == 4 else (1, -1)
            inv = g[f"{i}.weight"][()] / np.sqrt(g[f"{i}.running_var"][()] + np.float32(settings["eps"]))
            x = (x - g[f"{i}.running_mean"][()].reshape(shape)) * inv.reshape(shape) + g[f"{i}.bias"][()].reshape(shape)
        elif kind in ("linear", "conv2d") and i in quantized:
            q, scale = quantized_input(x, i)
            weight = g[f"{i}.weight"][()].astype(np.int32)
            scales = g[f"{i}.weight_scale"][()] * scale
            if kind == "linear":
                x = (q @ weight.T).astype(np.float32) * scales  # exact int32 sums
            else:  # the padding is the real 0: q − zero = 0 there
                x = conv2d(q, weight, settings["stride"], settings["padding"]).astype(np.float32) * scales.reshape(1, -1, 1, 1)
            if f"{i}.bias" in g:
                x = x + (g[f"{i}.bias"][()].reshape(1, -1, 1, 1) if kind == "conv2d" else g[f"{i}.bias"][()])
        elif kind == "linear":
            x = x @ g[f"{i}.weight"][()].T + g[f"{i}.bias"][()]
        elif kind == "conv2d":
            x = conv2d(x, g[f"{i}.weight"][()], settings["stride"], settings["padding"]) + g[f"{i}.bias"][()].reshape(1, -1, 1, 1)
        else:
            sys.exit(f"layer {i}: {kind} is not handled by this snippet")
    return x


model, images, labels = sys.argv[1:4]
g = h5py.File(model, "r")["student"]
description = json.loads(g.attrs["architecture"])
layers = description["model"]["layers"]
quantized = json.loads(g.attrs["quantization"])["layers"]
pixels = idx(images).astype(np.float32) / np.float32(255)  # features as distill reads them
pixels = pixels.reshape([len(pixels)] + description["input_shape"])
predicted = np.concatenate([forward(pixels[s : s + 500]).argmax(1) for s in range(0, len(pixels), 500)])
print(f"int8 test accuracy {100 * np.mean(predicted == idx(labels)):.2f}%")
