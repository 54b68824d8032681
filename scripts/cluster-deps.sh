#!/usr/bin/env bash
# Debian packages the real single-node cluster (test/cluster) needs, besides what
# test/envtest/provision.sh installs for the control plane. Idempotent; run as root.
#   containerd + runc          container runtime (own root/state/socket, never the system one)
#   containernetworking-plugins bridge, host-local, loopback, portmap in /usr/lib/cni
#   dnsmasq-base               cluster DNS for Service names
#   busybox-static             the /bin/sh of the images built without Docker
#   gcc + libc6-dev            the pause binary, compiled with -static from the k8s source tree
#   iptables iproute2 util-linux  bridge, FORWARD guard, nsenter/setpriv
set -euo pipefail
pkgs=(containerd runc containernetworking-plugins dnsmasq-base busybox-static gcc libc6-dev iptables iproute2 util-linux)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ! command -v kubectl >/dev/null; then missing+=(kubernetes-client); fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "[cluster-deps] installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi
# The Debian package enables a system containerd service; the cluster runs its own instance.
if command -v systemctl >/dev/null && systemctl is-active --quiet containerd 2>/dev/null; then
  echo "[cluster-deps] note: a system containerd is running; the cluster uses its own socket and root" >&2
fi
exit 0
