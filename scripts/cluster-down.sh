#!/usr/bin/env bash
# Tears down the single-node cluster of test/cluster (also after a crash): everything is taken
# from the state file the harness wrote, so only what that run started or added is touched.
# Order: kubelet first, then containerd's tasks and containers, containerd, kube-proxy, scheduler,
# dnsmasq; then mounts under the kubelet/containerd dirs, the CNI network namespaces, the bridge,
# the iptables rules and sysctls. Idempotent; `npm run cluster:down`.
set -uo pipefail
STATE_BASE="${ISTHMUS_CLUSTER_STATE:-/var/lib/isthmus-cluster}"
RUN_DIR="$STATE_BASE/run"
STATE="$RUN_DIR/state.env"
say() { echo "[cluster-down] $*" >&2; }
# containerd shims outlive containerd; ours are the ones serving our containerd's socket (a path
# only this harness uses), e.g. after the test process was SIGKILLed in the middle of a teardown.
sweep_shims() {
  local sock="$RUN_DIR/containerd.sock" f pid
  for f in /proc/[0-9]*/cmdline; do
    pid="${f#/proc/}"; pid="${pid%/cmdline}"
    tr '\0' '\n' <"$f" 2>/dev/null | head -1 | grep -q 'containerd-shim' || continue
    tr '\0' ' ' <"$f" 2>/dev/null | grep -qF -- "-address $sock " && kill -KILL "$pid" 2>/dev/null
  done
  return 0
}
[ -d "$RUN_DIR" ] || { sweep_shims; exit 0; }
if [ -f "$STATE" ]; then
  # shellcheck disable=SC1090
  source "$STATE"
fi

# Kills a recorded PID if it still runs the expected program (never by name or pattern).
stop_pid() { # pid expected-substring [grace-seconds]
  local pid="${1:-}" want="$2" grace="${3:-0}"
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 0
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$want" || return 0
  gone() { [ ! -d "/proc/$pid" ] || [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" = Z ]; }
  if [ "$grace" -gt 0 ]; then
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq $((grace * 10))); do gone && return 0; sleep 0.1; done
  fi
  kill -KILL "$pid" 2>/dev/null
  for _ in $(seq 50); do gone && return 0; sleep 0.1; done
}

stop_pid "${KUBELET_PID:-}" kubelet

if [ -n "${CONTAINERD_SOCK:-}" ] && [ -S "$CONTAINERD_SOCK" ] && [ -d "/proc/${CONTAINERD_PID:-0}" ]; then
  ctr() { timeout 20 command ctr --address "$CONTAINERD_SOCK" -n k8s.io "$@"; }
  for id in $(ctr tasks ls -q 2>/dev/null); do ctr tasks kill -s SIGKILL "$id" >/dev/null 2>&1; done
  for id in $(ctr tasks ls -q 2>/dev/null); do ctr tasks rm -f "$id" >/dev/null 2>&1; done
  for id in $(ctr containers ls -q 2>/dev/null); do ctr containers rm "$id" >/dev/null 2>&1; done
fi
# Whatever containerd could not remove (or if it was already dead): runc and the shims directly.
if [ -n "${RUNC_ROOT:-}" ] && [ -d "$RUNC_ROOT" ]; then
  for id in $(runc --root "$RUNC_ROOT" list -q 2>/dev/null); do runc --root "$RUNC_ROOT" delete --force "$id" >/dev/null 2>&1; done
fi
if [ -n "${CONTAINERD_STATE:-}" ]; then
  for f in "$CONTAINERD_STATE"/io.containerd.runtime.v2.task/*/*/shim.pid; do
    [ -f "$f" ] && stop_pid "$(cat "$f")" containerd-shim
  done
fi
stop_pid "${CONTAINERD_PID:-}" containerd 5
sweep_shims
stop_pid "${KUBE_PROXY_PID:-}" kube-proxy
stop_pid "${SCHEDULER_PID:-}" kube-scheduler
stop_pid "${DNSMASQ_PID:-}" dnsmasq

# Mounts left under our directories (pod volumes, rootfs overlays, sandbox shm), deepest first.
for dir in "${KUBELET_ROOT:-}" "${CONTAINERD_STATE:-}" "${CONTAINERD_ROOT:-}"; do
  [ -n "$dir" ] || continue
  awk -v p="$dir" '$5 == p || index($5, p "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r | while read -r m; do
    umount -l "$(printf '%b' "$m")" 2>/dev/null
  done
done

# Network namespaces the CNI created during the run.
if [ -f "$RUN_DIR/netns.before" ]; then
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep '^cni-'); do
    grep -qxF "$ns" "$RUN_DIR/netns.before" || ip netns delete "$ns" 2>/dev/null
  done
fi
[ "${BRIDGE_CREATED:-}" = 1 ] && ip link delete "${BRIDGE:-cni0}" 2>/dev/null

# iptables rules we inserted (one `-t TABLE -D CHAIN ...` per line), then kube-proxy's own.
if [ -f "$RUN_DIR/iptables.rules" ]; then
  while read -r rule; do
    [ -n "$rule" ] || continue
    # shellcheck disable=SC2086
    while iptables $rule 2>/dev/null; do :; done
  done <"$RUN_DIR/iptables.rules"
fi
if [ -n "${KUBE_PROXY_BIN:-}" ] && [ -x "$KUBE_PROXY_BIN" ] && [ "${KUBE_PROXY_STARTED:-}" = 1 ]; then
  "$KUBE_PROXY_BIN" --cleanup >/dev/null 2>&1
fi
# The KUBE-* chains kubelet and kube-proxy create and --cleanup leaves (KUBE-FIREWALL, canaries,
# KUBE-MARK-*): first the jumps to them from the built-in chains, then the chains themselves.
remove_kube_chains() { # iptables|ip6tables
  local ipt="$1" table rule chain
  for table in filter nat mangle; do
    "$ipt" -t "$table" -S 2>/dev/null | grep -E '^-A [A-Z]+ .*-j KUBE-' | grep -vE '^-A KUBE-' | while read -r rule; do
      # shellcheck disable=SC2086
      eval "$ipt -t $table -D ${rule#-A }" 2>/dev/null
    done
    for chain in $("$ipt" -t "$table" -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^KUBE-/ {print $2}'); do
      "$ipt" -t "$table" -F "$chain" 2>/dev/null
    done
    for chain in $("$ipt" -t "$table" -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^KUBE-/ {print $2}'); do
      "$ipt" -t "$table" -X "$chain" 2>/dev/null
    done
  done
}
if [ "${KUBE_PROXY_STARTED:-}" = 1 ] || [ -n "${KUBELET_PID:-}" ]; then
  remove_kube_chains iptables
  remove_kube_chains ip6tables
fi

[ -n "${IP_FORWARD_BEFORE:-}" ] && sysctl -qw "net.ipv4.ip_forward=$IP_FORWARD_BEFORE" 2>/dev/null
[ -n "${ROUTE_LOCALNET_BEFORE:-}" ] && sysctl -qw "net.ipv4.conf.all.route_localnet=$ROUTE_LOCALNET_BEFORE" 2>/dev/null

# Pod log dirs the kubelet wrote during the run.
for d in /var/log/pods /var/log/containers; do
  [ -f "$RUN_DIR/$(basename "$d").before" ] || continue
  for e in "$d"/*; do
    [ -e "$e" ] || [ -L "$e" ] || continue
    grep -qxF "$(basename "$e")" "$RUN_DIR/$(basename "$d").before" || rm -rf "$e"
  done
done

# The control plane's temp dir, when its owner died without removing it (a live owner stops the
# control plane itself, after this script).
if [ -n "${CONTROL_PLANE_DIR:-}" ] && [ -n "${OWNER_PID:-}" ] && [ ! -d "/proc/$OWNER_PID" ]; then
  rm -rf "$CONTROL_PLANE_DIR"
fi
rm -rf "$RUN_DIR"
say "done"
