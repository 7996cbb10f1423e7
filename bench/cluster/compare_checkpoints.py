#!/usr/bin/python3
"""compare_checkpoints.py DIR_A DIR_B: are the newest checkpoints in two directories
bit-identical in every numeric dataset (parameters, optimizer state, counters)?

Strings and other metadata (host names, dates) may differ between the runs and are not
compared. Exit 0 if identical, 1 if not, 2 if a checkpoint is missing."""
import glob
import os
import sys

import h5py
import numpy as np


def newest(d):
    files = sorted(glob.glob(os.path.join(d, "**", "*.h5"), recursive=True), key=os.path.getmtime)
    return files[-1] if files else None


def numeric_datasets(f):
    out = {}

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset) and obj.dtype.kind in "biuf":
            out[name] = obj[()]
    f.visititems(visit)
    return out


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    a, b = newest(sys.argv[1]), newest(sys.argv[2])
    if not a or not b:
        print(f"bit-identical: unknown (no checkpoint in {sys.argv[1] if not a else sys.argv[2]})")
        return 2
    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        da, db = numeric_datasets(fa), numeric_datasets(fb)
    differ = []
    for name in sorted(set(da) | set(db)):
        if name not in da or name not in db:
            differ.append(f"{name}: only in one file")
        elif da[name].shape != db[name].shape or da[name].tobytes() != db[name].tobytes():
            diff = ""
            if da[name].shape == db[name].shape and da[name].dtype.kind == "f":
                diff = f", max |diff| {np.max(np.abs(da[name].astype(float) - db[name].astype(float))):.3g}"
            differ.append(f"{name}: differs{diff}")
    n_values = sum(v.size for v in da.values())
    print(f"{os.path.basename(a)} vs {os.path.basename(b)}: {len(da)} numeric datasets, {n_values} values")
    if differ:
        print("bit-identical: NO\n  " + "\n  ".join(differ))
        return 1
    print("bit-identical: yes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
