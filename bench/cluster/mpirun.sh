#!/usr/bin/env bash
# Launches an MPI program on the emulated hosts (see emulate.sh):
#
#   mpirun.sh N <program> [args...]
#
# N ranks, RDP_RANKS_PER_HOST of them (default 1) on each of the hosts PREFIX-n1 ..
# PREFIX-n<N/RDP_RANKS_PER_HOST>, each with its host's name as its host name. Between hosts
# all MPI traffic goes over the shaped links (TCP); the ranks of one host share memory (the
# vader BTL, and ringdp's node-shared window), as on a real node. RDP_MAP_BY places them:
# "slot" (default: ranks 0..k-1 on n1, k..2k-1 on n2, ...) or "node" (round-robin: rank r
# on host r mod hosts). Extra mpirun flags can be given in RDP_MPIRUN_ARGS (e.g.
# "-x RINGDP_ALGORITHM").
#
# How: mpirun itself runs in the launcher namespace PREFIX-head with a private /etc/hosts
# that maps the host names to their addresses (so no name lookup ever leaves the cluster),
# and starts its daemons through a small rsh agent that plays ssh: given "<host> <command>",
# it runs the command in that host's namespace under a new UTS namespace whose host name is
# <host>.
set -euo pipefail

PREFIX=${RDP_PREFIX:-rdp}
SUBNET=${RDP_SUBNET:-10.213.0}
HEAD="${PREFIX}-head"

die() { echo "mpirun.sh: error: $*" >&2; exit 1; }

[ $# -ge 2 ] || { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
n=$1; shift
[[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -ge 1 ] || die "bad rank count '$n'"
per_host=${RDP_RANKS_PER_HOST:-1}
[[ "$per_host" =~ ^[0-9]+$ ]] && [ "$per_host" -ge 1 ] ||
  die "RDP_RANKS_PER_HOST must be a positive integer, got '$per_host'"
[ $((n % per_host)) -eq 0 ] || die "$n ranks do not fill hosts of $per_host ranks"
map_by=${RDP_MAP_BY:-slot}
case "$map_by" in slot | node) ;; *) die "RDP_MAP_BY must be slot or node, got '$map_by'" ;; esac
hosts=$((n / per_host))
[ "$(id -u)" -eq 0 ] || die "must run as root (ip netns exec needs it)"
command -v mpirun >/dev/null || die "mpirun not found"
command -v unshare >/dev/null || die "unshare (util-linux) not found"

nss=$(ip netns list 2>/dev/null | awk '{print $1}')
echo "$nss" | grep -qx -- "$HEAD" || die "no emulated cluster (namespace $HEAD missing): run emulate.sh up $n RATE first"
for i in $(seq 1 "$hosts"); do
  echo "$nss" | grep -qx -- "${PREFIX}-n$i" ||
    die "$n ranks need $hosts emulated hosts but ${PREFIX}-n$i does not exist: run emulate.sh up $hosts RATE"
done

# The program must be found from the launcher's working directory, as with any mpirun.
prog=$1; shift
if [[ "$prog" == */* ]]; then
  [ -x "$prog" ] || die "program '$prog' not found or not executable"
  prog=$(cd "$(dirname "$prog")" && pwd)/$(basename "$prog")
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/${PREFIX}-mpirun.XXXXXX")
trap 'rm -rf "$work"' EXIT

{
  echo "127.0.0.1 localhost"
  echo "${SUBNET}.254 ${HEAD}"
  for i in $(seq 1 "$hosts"); do echo "${SUBNET}.$i ${PREFIX}-n$i"; done
} >"$work/hosts"
for i in $(seq 1 "$hosts"); do echo "${PREFIX}-n$i slots=$per_host"; done >"$work/hostfile"

# The rsh agent. Open MPI calls it as: agent <host> <orted command words...>, and, like
# ssh, the words are joined and run by a shell on the "remote" host.
cat >"$work/agent" <<EOF
#!/bin/sh
host=\$1; shift
case "\$host" in
  ${PREFIX}-n[0-9]*) ;;
  *) echo "rsh agent: refusing unknown host '\$host'" >&2; exit 1 ;;
esac
exec ip netns exec "\$host" unshare --uts sh -c "hostname \$host; \$*"
EOF
chmod +x "$work/agent"

# Open MPI as root, ranks that yield when idle (they would otherwise spin on the 2 shared
# cores and starve the ranks that have work), TCP only on the cluster subnet. With several
# ranks per host, shared memory between them (vader, copy-in/copy-out: single-copy needs
# ptrace rights that containers lack); Open MPI uses it only between ranks its daemons
# place on the same host, so everything between hosts still crosses the links.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_mpi_yield_when_idle=1
cidr="${SUBNET}.0/24"
btl=tcp,self
if [ "$per_host" -gt 1 ]; then
  btl=tcp,vader,self
  export OMPI_MCA_btl_vader_single_copy_mechanism=none
fi
rc=0
# shellcheck disable=SC2086
ip netns exec "$HEAD" unshare --uts sh -c '
  hostname "$1"; shift
  mount --bind "$1" /etc/hosts || { echo "mpirun.sh: cannot bind-mount the cluster hosts file" >&2; exit 1; }
  shift
  exec "$@"' sh "$HEAD" "$work/hosts" \
  mpirun -np "$n" --hostfile "$work/hostfile" --map-by "$map_by" --bind-to none \
    --mca plm_rsh_agent "$work/agent" --mca plm_rsh_no_tree_spawn 1 \
    --mca oob_tcp_if_include "$cidr" \
    --mca pml ob1 --mca btl "$btl" --mca btl_tcp_if_include "$cidr" \
    ${RDP_MPIRUN_ARGS:-} \
    "$prog" "$@" || rc=$?
exit "$rc"
