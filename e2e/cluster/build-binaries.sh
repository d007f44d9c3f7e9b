#!/usr/bin/env bash
# Builds the local control plane's binaries from the Go module proxy and caches them by version
# under ${SWG_CACHE:-~/.cache/swg-operator}/bin/<name>-<version>/. A binary already present is
# never rebuilt, so a warm `make cluster-up` builds nothing.
#
# Usage: build-binaries.sh [all|kubernetes|etcd|kwok|helm]
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.36.3}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
KWOK_VERSION="${KWOK_VERSION:-v0.8.0}"
HELM_VERSION="${HELM_VERSION:-v3.21.4}"
CACHE="${SWG_CACHE:-$HOME/.cache/swg-operator}"
export GOWORK=off GOFLAGS=-buildvcs=false GOTOOLCHAIN=local

log() { printf '[build-binaries] %s\n' "$*" >&2; }

have() {  # have DIR BIN... : every binary present
  local dir=$1; shift
  local b
  for b in "$@"; do [ -x "$dir/$b" ] || return 1; done
}

build_kubernetes() {
  local out="$CACHE/bin/kubernetes-$K8S_VERSION"
  local bins=(kube-apiserver kube-controller-manager kube-scheduler kubectl)
  if have "$out" "${bins[@]}"; then log "kubernetes $K8S_VERSION cached in $out"; return; fi
  local staging="${K8S_VERSION/v1./v0.}"
  local work="$CACHE/src/kubernetes-$K8S_VERSION"
  mkdir -p "$work" "$out.tmp"
  cd "$work"
  log "building kubernetes $K8S_VERSION (staging $staging) in $work; cold builds take 15-30 min"
  local gomod
  gomod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
  {
    echo "module swg-operator.local/k8s-build"
    echo
    grep -E '^go [0-9]' "$gomod"
    grep -E '^godebug' "$gomod" || true
    echo
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo
    # Every staging module the upstream go.mod points at ./staging/... is taken from the proxy at
    # the matching v0.x version instead (replace lines only work in the main module).
    sed -nE 's#^[[:space:]]*(k8s\.io/[^ ]+) => \./staging/.*#replace \1 => \1 '"$staging"'#p' "$gomod"
  } > go.mod
  # A godebug block spans several lines upstream; keep it whole.
  if grep -q '^godebug ($' "$gomod"; then
    python3 - "$gomod" <<'PY'
import re, sys
src = open(sys.argv[1]).read()
block = re.search(r"^godebug \(\n.*?^\)\n", src, re.S | re.M)
mod = open("go.mod").read().replace("godebug (\n", "")
if block:
    mod = mod.replace("require k8s.io/kubernetes", block.group(0) + "\nrequire k8s.io/kubernetes", 1)
open("go.mod", "w").write(mod)
PY
  fi
  cat > tools.go <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
  go mod tidy -e >/dev/null 2>&1 || true
  go mod tidy
  local minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
  local date; date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  local ld="-s -w"
  local pkg
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ld+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$date"
  done
  local b
  for b in "${bins[@]}"; do
    log "go build $b"
    CGO_ENABLED=0 go build -trimpath -tags=selinux,notest -ldflags "$ld" -o "$out.tmp/$b" "k8s.io/kubernetes/cmd/$b"
  done
  rm -rf "$out"; mv "$out.tmp" "$out"
  log "kubernetes $K8S_VERSION built into $out"
}

build_etcd() {
  local out="$CACHE/bin/etcd-$ETCD_VERSION"
  if have "$out" etcd; then log "etcd $ETCD_VERSION cached in $out"; return; fi
  local work="$CACHE/src/etcd-$ETCD_VERSION"
  mkdir -p "$work" "$out.tmp"
  cd "$work"
  log "building etcd $ETCD_VERSION"
  cat > go.mod <<MOD
module swg-operator.local/etcd-build

go 1.24
MOD
  go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION"
  cat > tools.go <<'GO'
//go:build tools

package tools

import _ "go.etcd.io/etcd/server/v3"
GO
  go mod tidy
  CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$out.tmp/etcd" go.etcd.io/etcd/server/v3
  rm -rf "$out"; mv "$out.tmp" "$out"
  log "etcd $ETCD_VERSION built into $out"
}

# kwok's own stage files, relative to the module's kustomize/stage/ folder. The "fast" pod stages
# are self-contained (the "general" ones wait for a pod-create stage); the volume stages bind PVCs
# of the `kwok-volume` StorageClass to fake PVs, so workloads with volumes start too.
KWOK_STAGES=(
  node/fast/node-initialize.yaml
  node/heartbeat-with-lease/node-heartbeat-with-lease.yaml
  pod/fast/pod-ready.yaml
  pod/fast/pod-complete.yaml
  pod/fast/pod-delete.yaml
  volume/fast/pvc-provision.yaml
  volume/fast/pv-bind.yaml
  volume/fast/pvc-delete.yaml
  volume/fast/pv-delete.yaml
)

build_kwok() {
  local out="$CACHE/bin/kwok-$KWOK_VERSION"
  local header="# kwok $KWOK_VERSION stages: ${KWOK_STAGES[*]}"
  if have "$out" kwok && [ "$(head -n1 "$out/stages.yaml" 2>/dev/null)" = "$header" ]; then
    log "kwok $KWOK_VERSION cached in $out"; return
  fi
  mkdir -p "$out"
  if ! have "$out" kwok; then
    log "building kwok $KWOK_VERSION"
    CGO_ENABLED=0 GOBIN="$out" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
  fi
  local dir
  dir=$(go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
  local stage
  echo "$header" > "$out/stages.yaml.tmp"
  for stage in "${KWOK_STAGES[@]}"; do
    [ -f "$dir/kustomize/stage/$stage" ] || { log "kwok stage $stage not found in $dir"; exit 1; }
    { echo "---"; cat "$dir/kustomize/stage/$stage"; } >> "$out/stages.yaml.tmp"
  done
  mv "$out/stages.yaml.tmp" "$out/stages.yaml"
  log "kwok $KWOK_VERSION and its stages are in $out"
}

build_helm() {
  local out="$CACHE/bin/helm-$HELM_VERSION"
  if have "$out" helm; then log "helm $HELM_VERSION cached in $out"; return; fi
  mkdir -p "$out.tmp"
  log "building helm $HELM_VERSION"
  CGO_ENABLED=0 GOBIN="$out.tmp" go install -trimpath \
    -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" \
    "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  rm -rf "$out"; mv "$out.tmp" "$out"
  log "helm $HELM_VERSION built into $out"
}

what="${1:-all}"
case "$what" in
  all) build_etcd; build_kwok; build_helm; build_kubernetes ;;
  kubernetes|etcd|kwok|helm) "build_$what" ;;
  *) echo "usage: $0 [all|kubernetes|etcd|kwok|helm]" >&2; exit 2 ;;
esac
