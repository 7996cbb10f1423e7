#!/usr/bin/env bash
# Emulated cluster on one Linux machine: every host is a network namespace with one
# rate-limited link to a switch (a Linux bridge that lives in its own namespace).
#
#   emulate.sh up N RATE     create (or resize to) N hosts, every link shaped to RATE
#   emulate.sh rate RATE     reshape every existing link
#   emulate.sh status        show what exists (namespaces, links, qdiscs); exit 0 either way
#   emulate.sh down          remove everything this script made
#
# RATE is a tc rate: 200mbit, 1gbit, 500Mbit, ... (per link and per direction).
#
# Topology (PREFIX defaults to "rdp", set RDP_PREFIX to run a second, separate cluster):
#
#   ns PREFIX-n1 [PREFIX-eth 10.213.0.1] ==veth== [PREFIX-n1] \
#   ns PREFIX-n2 [PREFIX-eth 10.213.0.2] ==veth== [PREFIX-n2]  bridge PREFIX-br in ns PREFIX-sw
#   ...                                                        /  (no IP address, L2 only)
#   ns PREFIX-head [PREFIX-eth 10.213.0.254] ==veth== [PREFIX-head] (launcher, not shaped)
#
# Network safety, by construction: no interface of the cluster is ever in the root
# namespace (veth ends are created directly inside their namespaces), the namespaces have no
# default route and only the 10.213.0.0/24 subnet, and the bridge has no address, so packets
# can only travel between the cluster's own namespaces. Nothing is forwarded or NATed.
#
# Shaping: a tbf qdisc on both ends of every host link, so each host has RATE up and RATE
# down, like a full-duplex NIC on a switch. tbf's burst must hold a whole GSO packet (64 KiB);
# below about 128 KiB the kernel splits every large packet in software and the CPU, not the
# link, becomes the limit. Delay cannot be emulated: netem is not available on this kernel
# kind, so the latency is that of the veth/bridge path (tens of microseconds).
set -euo pipefail

PREFIX=${RDP_PREFIX:-rdp}
SUBNET=${RDP_SUBNET:-10.213.0}          # /24; host i gets .i, the launcher .254
BURST=${RDP_BURST:-131072}              # bytes, >= 131072 (see above)
LATENCY=${RDP_TBF_LATENCY:-20ms}        # tbf queue length, expressed as time at RATE
MAX_HOSTS=250

SW="${PREFIX}-sw"
HEAD="${PREFIX}-head"
BR="${PREFIX}-br"
HOST_IF="${PREFIX}-eth"

die() { echo "emulate.sh: error: $*" >&2; exit 1; }
log() { echo "emulate.sh: $*"; }

usage() {
  sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
  exit "${1:-2}"
}

host_ns() { echo "${PREFIX}-n$1"; }

require_root() {
  [ "$(id -u)" -eq 0 ] || die "must run as root (network namespaces and tc need CAP_NET_ADMIN); run it with sudo"
  command -v ip >/dev/null || die "'ip' (iproute2) not found"
  command -v tc >/dev/null || die "'tc' (iproute2) not found"
}

ns_exists() { ip netns list 2>/dev/null | awk '{print $1}' | grep -qx -- "$1"; }

# Our namespaces, by name: PREFIX-sw, PREFIX-head, PREFIX-n<digits>.
our_namespaces() {
  ip netns list 2>/dev/null | awk '{print $1}' |
    grep -E "^${PREFIX}-(sw|head|n[0-9]+)$" || true
}

existing_hosts() {
  our_namespaces | sed -n "s/^${PREFIX}-n\([0-9]\+\)$/\1/p" | sort -n
}

validate_rate() {
  [[ "$1" =~ ^[0-9]+(\.[0-9]+)?([kKmMgG]?[bB]it)$ ]] ||
    die "bad RATE '$1': give a tc rate such as 200mbit, 500mbit or 1gbit"
}

validate_burst() {
  [[ "$BURST" =~ ^[0-9]+$ ]] || die "RDP_BURST must be a byte count, got '$BURST'"
  [ "$BURST" -ge 131072 ] ||
    die "RDP_BURST=$BURST is below 131072 bytes: tbf would split every GSO packet in software and the CPU, not the link, would limit"
}

# Checks the kernel features before touching anything, in a throw-away namespace, so that a
# missing feature is a clear message rather than half a cluster.
preflight() {
  local probe="${PREFIX}-probe$$"
  ip netns add "$probe" 2>/dev/null ||
    die "cannot create a network namespace ('ip netns add' failed): the kernel or the container does not allow it"
  if ! ip -n "$probe" link add "${PREFIX}-pa" type veth peer name "${PREFIX}-pb" 2>/dev/null; then
    ip netns del "$probe"
    die "cannot create a veth pair: the kernel lacks veth support"
  fi
  if ! ip -n "$probe" link add "${PREFIX}-pbr" type bridge 2>/dev/null; then
    ip netns del "$probe"
    die "cannot create a Linux bridge: the kernel lacks bridge support"
  fi
  if ! tc -n "$probe" qdisc add dev "${PREFIX}-pa" root tbf rate 100mbit burst "$BURST" latency "$LATENCY" 2>/dev/null; then
    ip netns del "$probe"
    die "the tbf qdisc is not available (sch_tbf missing from the kernel): links cannot be rate-limited"
  fi
  ip netns del "$probe"
}

shape() {  # shape <netns> <dev> <rate>
  tc -n "$1" qdisc replace dev "$2" root tbf rate "$3" burst "$BURST" latency "$LATENCY"
}

# Inside a new namespace: loopback up, no IPv6 (no router solicitations, nothing to
# autoconfigure), no forwarding.
harden_ns() {
  ip -n "$1" link set lo up
  ip netns exec "$1" sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 \
    net.ipv4.ip_forward=0 >/dev/null
}

ensure_switch() {
  if ! ns_exists "$SW"; then
    ip netns add "$SW"
    harden_ns "$SW"
  fi
  if ! ip -n "$SW" link show "$BR" >/dev/null 2>&1; then
    ip -n "$SW" link add "$BR" type bridge
  fi
  ip -n "$SW" link set "$BR" up
}

# ensure_port <netns> <ip> <shaped: 1|0> [rate]: one veth from <netns> to the bridge.
ensure_port() {
  local ns=$1 addr=$2 shaped=$3 rate=${4:-}
  if ! ns_exists "$ns"; then
    ip netns add "$ns"
    harden_ns "$ns"
  fi
  if ! ip -n "$ns" link show "$HOST_IF" >/dev/null 2>&1; then
    # The switch-side port is named after the namespace it leads to.
    ip -n "$SW" link del "$ns" 2>/dev/null || true
    ip link add "$HOST_IF" netns "$ns" type veth peer name "$ns" netns "$SW"
  fi
  ip -n "$SW" link set "$ns" master "$BR"
  ip -n "$SW" link set "$ns" up
  ip -n "$ns" addr replace "${addr}/24" dev "$HOST_IF"
  ip -n "$ns" link set "$HOST_IF" up
  if [ "$shaped" = 1 ]; then
    shape "$ns" "$HOST_IF" "$rate"   # host -> switch (upload)
    shape "$SW" "$ns" "$rate"        # switch -> host (download)
  fi
}

remove_host() {
  local ns; ns=$(host_ns "$1")
  ip netns del "$ns" 2>/dev/null || true   # deletes its veth end, and so the peer port
  ip -n "$SW" link del "$ns" 2>/dev/null || true
}

cmd_up() {
  [ $# -eq 2 ] || usage
  local n=$1 rate=$2
  [[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -ge 1 ] && [ "$n" -le "$MAX_HOSTS" ] ||
    die "bad N '$n': give a host count between 1 and $MAX_HOSTS"
  validate_rate "$rate"
  validate_burst
  require_root
  preflight
  ensure_switch
  ensure_port "$HEAD" "${SUBNET}.254" 0
  local i
  for i in $(seq 1 "$n"); do
    ensure_port "$(host_ns "$i")" "${SUBNET}.$i" 1 "$rate"
  done
  # Resizing down: hosts beyond N go away, so that 'up' is idempotent for any N.
  for i in $(existing_hosts); do
    [ "$i" -le "$n" ] || remove_host "$i"
  done
  log "up: $n hosts ($(host_ns 1)..$(host_ns "$n"), ${SUBNET}.1..${SUBNET}.$n/24), every link $rate each way (tbf burst $BURST B); launcher $HEAD (${SUBNET}.254, not shaped)"
  log "emulated: per-link bandwidth only; NOT emulated: propagation delay (no netem on this kernel), separate CPUs (all hosts share this machine's cores)"
}

cmd_rate() {
  [ $# -eq 1 ] || usage
  validate_rate "$1"
  validate_burst
  require_root
  local hosts; hosts=$(existing_hosts)
  [ -n "$hosts" ] || die "no emulated hosts with prefix '$PREFIX': run '$0 up N RATE' first"
  local i ns
  for i in $hosts; do
    ns=$(host_ns "$i")
    shape "$ns" "$HOST_IF" "$1"
    shape "$SW" "$ns" "$1"
  done
  log "rate: $(echo "$hosts" | wc -w) links reshaped to $1 each way"
}

cmd_status() {
  require_root
  local nss; nss=$(our_namespaces)
  if [ -z "$nss" ]; then
    log "status: nothing exists (no namespace with prefix '${PREFIX}-')"
  else
    local hosts; hosts=$(existing_hosts)
    log "status: $(echo "$hosts" | grep -c . || true) hosts, namespaces: $(echo "$nss" | tr "\n" " ")"
    local i ns
    for i in $hosts; do
      ns=$(host_ns "$i")
      printf '  %-10s %-16s up: %s\n' "$ns" \
        "$(ip -n "$ns" -4 -br addr show dev "$HOST_IF" 2>/dev/null | awk '{print $3}')" \
        "$(tc -n "$ns" qdisc show dev "$HOST_IF" 2>/dev/null | grep -o 'tbf.*' || echo 'not shaped')"
      printf '  %-10s %-16s down: %s\n' "" "" \
        "$(tc -n "$SW" qdisc show dev "$ns" 2>/dev/null | grep -o 'tbf.*' || echo 'not shaped')"
    done
    if ns_exists "$SW"; then
      echo "  switch $SW: bridge $BR with ports: $(ip -n "$SW" -br link show master "$BR" 2>/dev/null | awk '{sub(/@.*/, "", $1); print $1}' | tr '\n' ' ')"
    fi
  fi
  # Belt and braces: the cluster never creates anything in the root namespace; say so if
  # something with our prefix is there anyway.
  local stray; stray=$(ip -br link 2>/dev/null | awk '{sub(/@.*/, "", $1); print $1}' | grep -E "^${PREFIX}-" || true)
  [ -z "$stray" ] || log "status: WARNING: links with prefix '${PREFIX}-' in the root namespace: $stray"
}

cmd_down() {
  require_root
  local ns removed=0 pids
  for ns in $(our_namespaces | sort -r); do   # hosts and head first, the switch last
    # A process still inside keeps the namespace alive (unnamed) after its name is removed;
    # its links go anyway, because deleting the switch namespace deletes every peer port.
    pids=$(ip netns pids "$ns" 2>/dev/null | tr '\n' ' ')
    [ -z "$pids" ] || log "down: warning: processes still running in $ns (pids: $pids); they lose their network"
    ip netns del "$ns"
    removed=$((removed + 1))
  done
  local left; left=$(our_namespaces)
  [ -z "$left" ] || die "down: could not remove: $left"
  log "down: removed $removed namespaces; nothing with prefix '${PREFIX}-' is left"
}

[ $# -ge 1 ] || usage
sub=$1; shift
case "$sub" in
  up) cmd_up "$@" ;;
  rate) cmd_rate "$@" ;;
  status) cmd_status "$@" ;;
  down) cmd_down "$@" ;;
  -h|--help|help) usage 0 ;;
  *) echo "emulate.sh: unknown command '$sub'" >&2; usage ;;
esac
