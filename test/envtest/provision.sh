#!/usr/bin/env bash
# Provisions the real Kubernetes control-plane binaries the integration tests run against.
# Everything comes from Debian's archive (no other network is reachable): the toolchain and
# etcd from bookworm packages, Kubernetes 1.20.2 from Debian's `kubernetes` source package
# (vendored Go deps), built once and cached outside the repo.
#
#   ISTHMUS_K8S_CACHE   cache dir (default ~/.cache/isthmus/k8s-1.20.2)
#   ISTHMUS_K8S_WHAT    binaries to build (default: apiserver, controller-manager, scheduler, kubelet, proxy)
set -euo pipefail

K8S_VERSION=1.20.2
# Bumped whenever the build changes; cached binaries of another recipe are rebuilt.
# reflect2-1.0.2: the vendored github.com/modern-go/reflect2 v1.0.1 makes Go >= 1.18 binaries
# crash (SIGSEGV in map iteration, e.g. serialising custom resources); Debian ships 1.0.2.
RECIPE=k8s-1.20.2+reflect2-1.0.2
CACHE="${ISTHMUS_K8S_CACHE:-$HOME/.cache/isthmus/k8s-$K8S_VERSION}"
WHAT="${ISTHMUS_K8S_WHAT:-kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy}"
log() { echo "[envtest] $*" >&2; }

need_pkgs=()
command -v go >/dev/null || need_pkgs+=(golang-go)
command -v rsync >/dev/null || need_pkgs+=(rsync)
command -v jq >/dev/null || need_pkgs+=(jq)
command -v etcd >/dev/null || need_pkgs+=(etcd-server)
command -v dpkg-source >/dev/null || need_pkgs+=(dpkg-dev)
REFLECT2=/usr/share/gocode/src/github.com/modern-go/reflect2
[ -f "$REFLECT2/go_above_118.go" ] || need_pkgs+=(golang-github-modern-go-reflect2-dev)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  log "installing Debian packages: ${need_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >&2
fi

missing=()
find_missing() {
  missing=()
  if [ "$(cat "$CACHE/bin/.recipe" 2>/dev/null)" != "$RECIPE" ]; then
    missing=($WHAT)
    return
  fi
  for b in $WHAT; do [ -x "$CACHE/bin/$b" ] || missing+=("$b"); done
}
find_missing
if [ ${#missing[@]} -eq 0 ]; then
  log "cached binaries present in $CACHE/bin"
  exit 0
fi

mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
if ! flock -n 9; then
  log "another provision.sh holds $CACHE/.lock (building?); waiting for it"
  flock 9
fi
# Whoever held the lock may have built what we need meanwhile.
find_missing
if [ ${#missing[@]} -eq 0 ]; then
  log "cached binaries present in $CACHE/bin"
  exit 0
fi
SRC="$CACHE/src"
if [ ! -f "$SRC/.unpacked" ]; then
  log "fetching Debian source package kubernetes ($K8S_VERSION) with a private apt list"
  APT="$CACHE/apt"
  mkdir -p "$APT/lists/partial"
  echo "deb-src http://deb.debian.org/debian bookworm main" >"$APT/sources.list"
  opts=(-o "Dir::Etc::SourceList=$APT/sources.list" -o Dir::Etc::SourceParts=/nonexistent -o "Dir::State::Lists=$APT/lists")
  apt-get "${opts[@]}" update -qq >&2
  rm -rf "$CACHE/fetch" && mkdir -p "$CACHE/fetch"
  (cd "$CACHE/fetch" && apt-get "${opts[@]}" source -qq "kubernetes=$K8S_VERSION*" >&2 || apt-get "${opts[@]}" source -qq kubernetes >&2)
  dir=$(find "$CACHE/fetch" -mindepth 1 -maxdepth 1 -type d -name 'kubernetes-*' | head -1)
  [ -n "$dir" ] || { log "apt-get source produced no kubernetes-* tree"; exit 1; }
  rm -rf "$SRC" && mv "$dir" "$SRC" && rm -rf "$CACHE/fetch"
  touch "$SRC/.unpacked"
fi

cd "$SRC"
# Patch: the Go-1.18-safe reflect2 (see RECIPE).
rm -f vendor/github.com/modern-go/reflect2/*.go vendor/github.com/modern-go/reflect2/*.s
cp "$REFLECT2"/*.go vendor/github.com/modern-go/reflect2/
cp "$REFLECT2"/*.s vendor/github.com/modern-go/reflect2/ 2>/dev/null || true
rm -f vendor/github.com/modern-go/reflect2/*_test.go
mkdir -p .go/src/k8s.io
[ -e .go/src/k8s.io/kubernetes ] || ln -s ../../.. .go/src/k8s.io/kubernetes
targets=""
for b in "${missing[@]}"; do targets="$targets cmd/$b"; done
log "building${targets} (10-20 min on 2 cores the first time)"
start=$(date +%s)
( while sleep 30; do log "still building... $(( $(date +%s) - start ))s"; done ) &
ticker=$!
trap 'kill $ticker 2>/dev/null || true' EXIT
cd .go/src/k8s.io/kubernetes
GOPATH="$SRC/.go" CGO_ENABLED=0 make WHAT="${targets# }" >&2
mkdir -p "$CACHE/bin"
for b in "${missing[@]}"; do
  f=$(find "$SRC/_output" -type f -name "$b" -path '*bin*' | head -1)
  [ -n "$f" ] || { log "build produced no $b"; exit 1; }
  # copy then rename, so a concurrent reader never sees a half-written binary
  cp "$f" "$CACHE/bin/.$b.tmp" && mv -f "$CACHE/bin/.$b.tmp" "$CACHE/bin/$b"
done
echo "$RECIPE" >"$CACHE/bin/.recipe"
log "built in $(( $(date +%s) - start ))s; binaries in $CACHE/bin"
