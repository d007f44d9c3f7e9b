#!/usr/bin/env bash
# Builds the local control plane's binaries from the Go module proxy and caches them by version
# under ${SWG_CACHE:-~/.cache/swg-operator}/bin/<name>-<version>/. A binary already present is
# never rebuilt, so a warm `make cluster-up` builds nothing.
#
# Usage: build-binaries.sh [all|kubernetes|etcd|kwok|helm|registry|helm-docs|node]
#
# `node` builds the real worker node's binaries (kubelet, kube-proxy, containerd, CoreDNS, the
# NetworkPolicy enforcer kube-router, local-path-provisioner and the pause program), each in a folder of its
# own, so it can run while another target builds. runc and the CNI plugins are Debian packages
# (runc, containernetworking-plugins: hack/install-apt.sh).
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.36.3}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
KWOK_VERSION="${KWOK_VERSION:-v0.8.0}"
HELM_VERSION="${HELM_VERSION:-v3.21.4}"
CONTAINERD_VERSION="${CONTAINERD_VERSION:-v2.4.2}"
COREDNS_VERSION="${COREDNS_VERSION:-v1.15.0}"
# The NetworkPolicy enforcer: kube-router in firewall-only mode (iptables and ipset; ingress and
# egress, ipBlock with except, namespace and pod selectors, ports). The module proxy serves
# only v2.1.0 of github.com/cloudnativelabs/kube-router/v2. Its two published advisories,
# GHSA-phqm-jgc3-qf8g (the service proxy trusts externalIPs) and GHSA-v5mh-h5hx-7v92 (the
# router's GoBGP gRPC port), are in the modules the node never runs (--run-service-proxy=false,
# --run-router=false). sigs.k8s.io/kube-network-policies (no advisory) needs the nftables
# `queue` expression, which these machines' kernel lacks.
KUBE_ROUTER_VERSION="${KUBE_ROUTER_VERSION:-v2.1.0}"
LOCAL_PATH_VERSION="${LOCAL_PATH_VERSION:-v0.0.30}"
CACHE="${SWG_CACHE:-$HOME/.cache/swg-operator}"
# This script's folder, resolved before any build changes directory (BASH_SOURCE may be relative).
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export GOWORK=off GOFLAGS=-buildvcs=false GOTOOLCHAIN=local

log() { printf '[build-binaries] %s\n' "$*" >&2; }

# One build at a time per cache: two `make setup` runs (two checkouts, or CI beside a developer)
# would otherwise build into the same folders and move each other's half-built output away.
mkdir -p "$CACHE"
exec 9>"$CACHE/.build-binaries.lock"
if ! flock -n 9; then log "another build holds $CACHE/.build-binaries.lock: waiting for it"; flock 9; fi

have() {  # have DIR BIN... : every binary present
  local dir=$1; shift
  local b
  for b in "$@"; do [ -x "$dir/$b" ] || return 1; done
}

# k8s_build NAME BIN... : builds k8s.io/kubernetes/cmd/<BIN> for each BIN in a wrapper module of
# its own ($CACHE/src/NAME, output $CACHE/bin/NAME), the staging modules taken from the proxy.
k8s_build() {
  local name=$1; shift
  local bins=("$@")
  local out="$CACHE/bin/$name"
  if have "$out" "${bins[@]}"; then log "$name cached in $out"; return; fi
  local staging="${K8S_VERSION/v1./v0.}"
  local work="$CACHE/src/$name"
  mkdir -p "$work" "$out.tmp"
  cd "$work"
  log "building ${bins[*]} $K8S_VERSION (staging $staging) in $work"
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
  {
    printf '//go:build tools\n\npackage tools\n\nimport (\n'
    local b
    for b in "${bins[@]}"; do printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "$b"; done
    printf ')\n'
  } > tools.go
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
  log "${bins[*]} $K8S_VERSION built into $out"
}

build_kubernetes() {  # cold builds take 15-30 min
  k8s_build "kubernetes-$K8S_VERSION" kube-apiserver kube-controller-manager kube-scheduler kubectl
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

# helm's defaults for `.Capabilities.KubeVersion` (helm template, helm lint) are link-time
# variables its release Makefile sets from the client-go it builds with; without them a helm
# built from the module proxy reports Kubernetes v1.20 and charts needing newer ones fail without
# --kube-version. The stamp file records what this build was linked with.
build_helm() {
  local out="$CACHE/bin/helm-$HELM_VERSION"
  local minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
  local stamp="helm $HELM_VERSION kube v1.$minor"
  if have "$out" helm && [ "$(cat "$out/stamp" 2>/dev/null)" = "$stamp" ]; then
    log "helm $HELM_VERSION cached in $out"; return
  fi
  mkdir -p "$out.tmp"
  log "building helm $HELM_VERSION (default Kubernetes v1.$minor)"
  local m=helm.sh/helm/v3
  local ld="-s -w -X $m/internal/version.version=$HELM_VERSION -X $m/internal/version.metadata="
  ld+=" -X $m/internal/version.gitTreeState=clean"
  ld+=" -X $m/pkg/chartutil.k8sVersionMajor=1 -X $m/pkg/chartutil.k8sVersionMinor=$minor"
  ld+=" -X $m/pkg/lint/rules.k8sVersionMajor=1 -X $m/pkg/lint/rules.k8sVersionMinor=$minor"
  CGO_ENABLED=0 GOBIN="$out.tmp" go install -trimpath -ldflags "$ld" "$m/cmd/helm@$HELM_VERSION"
  echo "$stamp" > "$out.tmp/stamp"
  rm -rf "$out"; mv "$out.tmp" "$out"
  log "helm $HELM_VERSION built into $out"
}

# A container registry (CNCF distribution) for the chart tests' `helm push` to an OCI registry;
# it listens on 127.0.0.1 only (tests/test_chart_oci.py).
REGISTRY_VERSION="${REGISTRY_VERSION:-v3.1.2}"
build_registry() {
  local m=github.com/distribution/distribution/v3
  go_build "registry-$REGISTRY_VERSION" "$m" "$REGISTRY_VERSION" \
    "-X $m/version.version=$REGISTRY_VERSION" registry="$m/cmd/registry"
}

# helm-docs generates charts/*/README.md's values table from the `# --` comments of values.yaml.
HELM_DOCS_VERSION="${HELM_DOCS_VERSION:-v1.14.2}"
build_helm_docs() {
  local out="$CACHE/bin/helm-docs-$HELM_DOCS_VERSION"
  if have "$out" helm-docs; then log "helm-docs cached in $out"; return; fi
  mkdir -p "$out.tmp"
  CGO_ENABLED=0 GOBIN="$out.tmp" go install -trimpath -ldflags "-s -w -X main.version=$HELM_DOCS_VERSION" \
    "github.com/norwoodj/helm-docs/cmd/helm-docs@$HELM_DOCS_VERSION"
  rm -rf "$out"; mv "$out.tmp" "$out"
  log "helm-docs $HELM_DOCS_VERSION built into $out"
}

# go_build NAME MODULE VERSION LDFLAGS OUT=PACKAGE... : builds each PACKAGE of MODULE@VERSION into
# $CACHE/bin/NAME/OUT in a wrapper module of its own ($CACHE/src/NAME), static (CGO_ENABLED=0).
go_build() {
  local name=$1 module=$2 version=$3 ldflags=$4; shift 4
  local out="$CACHE/bin/$name"
  local pair outs=()
  for pair in "$@"; do outs+=("${pair%%=*}"); done
  if have "$out" "${outs[@]}"; then log "$name cached in $out"; return; fi
  local work="$CACHE/src/$name"
  mkdir -p "$work" "$out.tmp"
  cd "$work"
  log "building $module $version (${outs[*]}) in $work"
  printf 'module swg-operator.local/%s-build\n\ngo 1.24\n' "${name%%-v*}" > go.mod
  {
    printf '//go:build tools\n\npackage tools\n\nimport (\n'
    for pair in "$@"; do printf '\t_ "%s"\n' "${pair#*=}"; done
    printf ')\n'
  } > tools.go
  go get "$module@$version"
  go mod tidy
  for pair in "$@"; do
    log "go build ${pair%%=*}"
    CGO_ENABLED=0 go build -trimpath -tags "$GO_TAGS" -ldflags "-s -w $ldflags" \
      -o "$out.tmp/${pair%%=*}" "${pair#*=}"
  done
  rm -rf "$out"; mv "$out.tmp" "$out"
  log "$name built into $out"
}
GO_TAGS=""

build_kubelet() {  # kubelet and kube-proxy: ~3 min on 2 idle cores
  k8s_build "kubernetes-node-$K8S_VERSION" kubelet kube-proxy
}

build_containerd() {
  local m=github.com/containerd/containerd/v2
  GO_TAGS="no_btrfs,no_devmapper,no_zfs" go_build "containerd-$CONTAINERD_VERSION" "$m" \
    "$CONTAINERD_VERSION" "-X $m/version.Version=$CONTAINERD_VERSION -X $m/version.Package=$m" \
    containerd="$m/cmd/containerd" ctr="$m/cmd/ctr" \
    containerd-shim-runc-v2="$m/cmd/containerd-shim-runc-v2"
}

build_coredns() {
  go_build "coredns-$COREDNS_VERSION" github.com/coredns/coredns "$COREDNS_VERSION" "" \
    coredns=github.com/coredns/coredns
}

build_kube_router() {
  local m=github.com/cloudnativelabs/kube-router/v2
  go_build "kube-router-$KUBE_ROUTER_VERSION" "$m" "$KUBE_ROUTER_VERSION" \
    "-X $m/pkg/version.Version=$KUBE_ROUTER_VERSION" kube-router="$m/cmd/kube-router"
}

build_local_path() {
  go_build "local-path-provisioner-$LOCAL_PATH_VERSION" github.com/rancher/local-path-provisioner \
    "$LOCAL_PATH_VERSION" "" local-path-provisioner=github.com/rancher/local-path-provisioner
}

# The sandbox (pause) program lives in the repository (pause/ beside this script); its build is
# cached by the digest of its source.
build_pause() {
  local src="$HERE/pause"
  local digest; digest=$(cat "$src/go.mod" "$src/main.go" | sha256sum | cut -c1-12)
  local out="$CACHE/bin/pause-$digest"
  if have "$out" pause; then log "pause cached in $out"; return; fi
  mkdir -p "$out.tmp"
  (cd "$src" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$out.tmp/pause" .)
  rm -rf "$out"; mv "$out.tmp" "$out"
  log "pause built into $out"
}

build_node() {
  build_pause; build_kube_router; build_local_path; build_coredns; build_containerd; build_kubelet
}

what="${1:-all}"
case "$what" in
  all) build_etcd; build_kwok; build_helm; build_registry; build_kubernetes; build_node ;;
  kubernetes|etcd|kwok|helm|node|kubelet|containerd|coredns|pause|registry) "build_$what" ;;
  helm-docs) build_helm_docs ;;
  kube-router) build_kube_router ;;
  local-path) build_local_path ;;
  *) echo "usage: $0 [all|kubernetes|etcd|kwok|helm|registry|helm-docs|node]" >&2; exit 2 ;;
esac
