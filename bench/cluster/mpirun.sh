#!/usr/bin/env bash
# Launches an MPI program with one rank per emulated host (see emulate.sh):
#
#   mpirun.sh N <program> [args...]
#
# Rank r runs in namespace PREFIX-n<r+1>, with that name as its host name, and all MPI
# traffic goes over the shaped links (TCP BTL only: there is no shared memory between
# "hosts"). Extra mpirun flags can be given in RDP_MPIRUN_ARGS (e.g. "-x RINGDP_ALGORITHM").
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

[ $# -ge 2 ] || { sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
n=$1; shift
[[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -ge 1 ] || die "bad rank count '$n'"
[ "$(id -u)" -eq 0 ] || die "must run as root (ip netns exec needs it)"
command -v mpirun >/dev/null || die "mpirun not found"
command -v unshare >/dev/null || die "unshare (util-linux) not found"

nss=$(ip netns list 2>/dev/null | awk '{print $1}')
echo "$nss" | grep -qx -- "$HEAD" || die "no emulated cluster (namespace $HEAD missing): run emulate.sh up $n RATE first"
for i in $(seq 1 "$n"); do
  echo "$nss" | grep -qx -- "${PREFIX}-n$i" ||
    die "$n ranks need $n emulated hosts but ${PREFIX}-n$i does not exist: run emulate.sh up $n RATE"
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
  for i in $(seq 1 "$n"); do echo "${SUBNET}.$i ${PREFIX}-n$i"; done
} >"$work/hosts"
for i in $(seq 1 "$n"); do echo "${PREFIX}-n$i slots=1"; done >"$work/hostfile"

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
# cores and starve the ranks that have work), TCP only on the cluster subnet.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_mpi_yield_when_idle=1
cidr="${SUBNET}.0/24"
rc=0
# shellcheck disable=SC2086
ip netns exec "$HEAD" unshare --uts sh -c '
  hostname "$1"; shift
  mount --bind "$1" /etc/hosts || { echo "mpirun.sh: cannot bind-mount the cluster hosts file" >&2; exit 1; }
  shift
  exec "$@"' sh "$HEAD" "$work/hosts" \
  mpirun -np "$n" --hostfile "$work/hostfile" --map-by node --bind-to none \
    --mca plm_rsh_agent "$work/agent" --mca plm_rsh_no_tree_spawn 1 \
    --mca oob_tcp_if_include "$cidr" \
    --mca pml ob1 --mca btl tcp,self --mca btl_tcp_if_include "$cidr" \
    ${RDP_MPIRUN_ARGS:-} \
    "$prog" "$@" || rc=$?
exit "$rc"
