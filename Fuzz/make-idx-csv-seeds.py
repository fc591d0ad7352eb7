#!/usr/bin/env python3
"""Writes the seed corpora of FuzzIDX and FuzzCSV (corpus/FuzzIDX, corpus/FuzzCSV).

Run from Fuzz/: python3 make-idx-csv-seeds.py. The model-file seeds come from the harness
itself (see README.md); the recipe seeds are copied from ../recipes and written by hand.
"""
import gzip, os, struct

def idx(magic, dims, data):
    return struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in dims) + bytes(data)

def idx_input(flags, images, labels):
    return bytes([flags]) + struct.pack(">H", len(images)) + images + labels

IMG, LAB = 2051, 2049
seeds = {}
seeds["two-3x3"] = idx_input(0, idx(IMG, [2, 3, 3], range(18)), idx(LAB, [2], [0, 1]))
seeds["two-3x3-gzip-both"] = idx_input(3, idx(IMG, [2, 3, 3], range(18)), idx(LAB, [2], [0, 1]))
seeds["empty-set"] = idx_input(0, idx(IMG, [0, 28, 28], []), idx(LAB, [0], []))
seeds["five-2x2-5-classes-half"] = idx_input(
    (5 << 2) | (2 << 6), idx(IMG, [5, 2, 2], [i * 12 for i in range(20)]), idx(LAB, [5], range(5)))
seeds["ten-1x1-split"] = idx_input(
    (1 << 6), idx(IMG, [10, 1, 1], [255] * 10), idx(LAB, [10], [i % 3 for i in range(10)]))
seeds["pregzipped-file-bytes"] = idx_input(
    0, gzip.compress(idx(IMG, [2, 2, 2], [7] * 8), mtime=0), gzip.compress(idx(LAB, [2], [3, 4]), mtime=0))
seeds["truncated-images"] = idx_input(0, idx(IMG, [3, 4, 4], range(40)), idx(LAB, [3], [1, 2, 3]))
seeds["wrong-magic"] = idx_input(0, idx(LAB, [2], [0, 1]), idx(IMG, [1, 1, 1], [0]))
seeds["trailing-bytes"] = idx_input(0, idx(IMG, [1, 2, 2], range(6)), idx(LAB, [1], [9, 9]))
seeds["label-out-of-range"] = idx_input(0, idx(IMG, [2, 1, 2], range(4)), idx(LAB, [2], [0, 10]))
seeds["count-mismatch"] = idx_input(0, idx(IMG, [2, 1, 1], range(2)), idx(LAB, [3], [0, 1, 2]))
seeds["huge-dims"] = idx_input(0, idx(IMG, [0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF], []), idx(LAB, [0xFFFFFFFF], []))
seeds["header-only"] = idx_input(0, struct.pack(">I", IMG), b"\x00\x00")
mnist = "../Tests/Fixtures/mnist-t10k-first100/"
if os.path.exists(mnist + "t10k-images-idx3-ubyte.gz"):
    images = gzip.open(mnist + "t10k-images-idx3-ubyte.gz").read()
    labels = gzip.open(mnist + "t10k-labels-idx1-ubyte.gz").read()
    seeds["mnist-first3"] = idx_input(1, idx(IMG, [3, 28, 28], images[16:16 + 3 * 784]), idx(LAB, [3], labels[8:11]))

os.makedirs("corpus/FuzzIDX", exist_ok=True)
for name, data in seeds.items():
    open(f"corpus/FuzzIDX/{name}", "wb").write(data)

# FuzzCSV: byte 0 flags, byte 1 label column (low nibble) and classes / shape size (high
# nibble), then the file; see Sources/FuzzCSV/FuzzCSV.swift.
def csv_input(flags, column, text):
    return bytes([flags, column]) + (text.encode() if isinstance(text, str) else text)

digits_like = "".join(
    ",".join(str((i * 7 + j) % 17) for j in range(8)) + f",{i % 4}\n" for i in range(12))
csv = {
    "three-rows": csv_input(0, 0, "0.5,1,0\n1.5,2,1\n2.5,3,1\n"),
    "digits-like-gzip": csv_input(1, 0, digits_like),
    "label-first-column": csv_input(0x02, 0, "0,1.0,2.0\n1,3.0,4.0\n2,5,6\n"),
    "classes-and-normalize": csv_input(0x04 | 0x08, 1 << 4, "1,2,0\n3,4,1\n5,6,2\n7,8,0\n"),
    "crlf-blank-lines": csv_input(0, 0, "1,2,0\r\n\r\n  3 , 4 ,1\r\n\n"),
    "ragged-row": csv_input(0, 0, "1,2,0\n3,1\n"),
    "bad-number": csv_input(0, 0, "1,x,0\n"),
    "nan-inf": csv_input(0, 0, "nan,1,0\ninf,2,1\n"),
    "negative-label": csv_input(0, 0, "1,2,-1\n"),
    "exponent-floats": csv_input(0, 0, "1e-3,-2.5E+2,0\n.5,5.,1\n"),
    "one-column": csv_input(0, 0, "1\n2\n"),
    "empty": csv_input(0, 0, ""),
    "validation-count": csv_input(0x40 | 0x80, 5, "1,2,0\n3,4,1\n5,6,0\n7,8,1\n"),
    "pregzipped-file-bytes": csv_input(0, 0, gzip.compress(b"1,2,0\n3,4,1\n", mtime=0)),
    "sample-shape": csv_input(0x10 | 0x20, 3 << 4, "1,2,3,4,0\n5,6,7,8,1\n"),
}
os.makedirs("corpus/FuzzCSV", exist_ok=True)
for name, data in csv.items():
    open(f"corpus/FuzzCSV/{name}", "wb").write(data)
