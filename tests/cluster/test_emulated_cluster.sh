#!/usr/bin/env bash
# test_emulated_cluster.sh <bench/cluster dir> <ringdp-hello> [ringdp-pingpong]
# Exit 0 pass, 1 fail, 77 skipped (not root, or no netns/veth/bridge/tbf here).
set -uo pipefail
dir=$1 hello=$2 pingpong=${3:-}
# A prefix of its own, so that the test never touches a cluster a user has brought up.
export RDP_PREFIX=rdpt
rate_mbit=200
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

if [ "$(id -u)" -ne 0 ]; then echo "SKIP: needs root (network namespaces, tc)"; exit 77; fi
probe=rdpt-probe$$
if ! ip netns add "$probe" 2>/dev/null; then echo "SKIP: cannot create network namespaces"; exit 77; fi
ok=1
ip -n "$probe" link add rdpt-a type veth peer name rdpt-b 2>/dev/null || ok=0
[ $ok = 1 ] && { ip -n "$probe" link add rdpt-br type bridge 2>/dev/null || ok=0; }
[ $ok = 1 ] && { tc -n "$probe" qdisc add dev rdpt-a root tbf rate 100mbit burst 131072 latency 20ms 2>/dev/null || ok=0; }
ip netns del "$probe"
if [ $ok = 0 ]; then echo "SKIP: veth, bridge or the tbf qdisc is not available"; exit 77; fi

# Whatever happens, leave nothing behind.
trap '"$dir/emulate.sh" down >/dev/null 2>&1' EXIT

"$dir/emulate.sh" up 3 ${rate_mbit}mbit || fail "emulate.sh up"
# Idempotent: a second 'up' with the same arguments succeeds and changes nothing.
"$dir/emulate.sh" up 3 ${rate_mbit}mbit >/dev/null || fail "second emulate.sh up"
status=$("$dir/emulate.sh" status)
echo "$status"
echo "$status" | grep -q "status: 3 hosts" || fail "status does not show 3 hosts"
[ "$(echo "$status" | grep -c "rate ${rate_mbit}Mbit")" -eq 6 ] ||
  fail "status does not show 6 shaped directions at ${rate_mbit}Mbit"

# Every rank must report its own emulated host: rank r on rdpt-n(r+1).
out=$("$dir/mpirun.sh" 3 "$hello" 2>&1); rc=$?
echo "$out"
[ $rc -eq 0 ] || fail "ringdp-hello exited with $rc"
for r in 0 1 2; do
  echo "$out" | grep -q "^rank $r of 3 on rdpt-n$((r + 1)) " || fail "rank $r did not run on rdpt-n$((r + 1))"
done
echo "$out" | grep -q "all 3 ranks agree" || fail "ranks did not agree"

# The links are shaped: a 4 MiB transfer cannot beat the configured rate (an upper bound
# only, so a busy CPU cannot make this fail; unshaped veth runs at hundreds of MB/s).
if [ -n "$pingpong" ]; then
  csv=$(mktemp)
  "$dir/mpirun.sh" 2 "$pingpong" --modes pingpong --min-bytes 4M --max-bytes 4M --seconds 0.1 --csv "$csv" >/dev/null ||
    fail "ringdp-pingpong failed"
  row=$(grep '^pingpong,' "$csv")
  echo "pingpong: $row"
  echo "$row" | grep -q ',rdpt-n1,rdpt-n2$' || fail "pingpong did not run between rdpt-n1 and rdpt-n2"
  # The column is found by its header name, so the check survives new columns.
  mbps=$(awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "mbytes_per_s") c = i; next }
                  $1 == "pingpong" && c { print $c }' "$csv")
  awk -v v="${mbps:-0}" -v r=$rate_mbit 'BEGIN { exit !(v > 0 && v <= 1.05 * r / 8) }' ||
    fail "4 MiB ran at '${mbps}' MB/s, above the ${rate_mbit} Mbit/s link (or not measured): shaping not in effect"
  rm -f "$csv"
fi

# Resizing: 'up 2' removes the third host and keeps the others.
"$dir/emulate.sh" up 2 ${rate_mbit}mbit >/dev/null || fail "emulate.sh up 2"
ip netns list | grep -q '^rdpt-n3\b' && fail "rdpt-n3 still exists after up 2"
ip netns list | grep -q '^rdpt-n2\b' || fail "rdpt-n2 missing after up 2"

"$dir/emulate.sh" down || fail "emulate.sh down"
after=$("$dir/emulate.sh" status)
echo "$after"
echo "$after" | grep -q "nothing exists" || fail "status after down is not empty"
ip netns list | grep -q '^rdpt-' && fail "namespaces left: $(ip netns list | grep '^rdpt-')"
ip -br link | grep -q '^rdpt-' && fail "links left in the root namespace"
trap - EXIT

if [ $fails -ne 0 ]; then echo "$fails check(s) failed"; exit 1; fi
echo "PASS"
