#!/usr/bin/env bash
# The e2e tier on kind, with real pods: builds the images, creates a kind cluster whose CNI
# enforces NetworkPolicy (hack/kind-config.yaml), loads the images, installs the chart as a user
# would, runs `helm test`, then runs the same e2e/ tests as the local control plane against it.
#
# Needs a Docker engine (none on the project's machines: run it on yours) and Go (to build kind
# and, through e2e/cluster/build-binaries.sh, kubectl and helm, unless they are on PATH).
#
# Usage: hack/e2e-kind.sh [all|images|up|load|install|test|down]     (default: all)
#   all      images, up, load, install, test
#   images   docker build of every images/*/Dockerfile (also `make images-docker`; `make images`
#            builds the same without Docker, with buildah: devtools/images/)
#   up       create the kind cluster (kept when it exists)
#   down     delete the kind cluster
# Environment: IMAGE_REGISTRY (ghcr.io/swg-operator), IMAGE_TAG (the package version),
#   KIND_CLUSTER_NAME (swg-e2e), KIND_VERSION (v0.33.0), KIND_NODE_IMAGE (kind's default),
#   PYTEST_ARGS (extra pytest arguments), SWG_CACHE (~/.cache/swg-operator).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${SWG_CACHE:-$HOME/.cache/swg-operator}
registry=${IMAGE_REGISTRY:-ghcr.io/swg-operator}
tag=${IMAGE_TAG:-$(sed -nE 's/^version = "([^"]+)"$/\1/p' "$repo/pyproject.toml")}
cluster=${KIND_CLUSTER_NAME:-swg-e2e}
kind_version=${KIND_VERSION:-v0.33.0}
state=$repo/.local/kind
kubeconfig=$state/kubeconfig
release=swg-operator
namespace=swg-system

log() { printf '[e2e-kind] %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

need_docker() {
  command -v docker >/dev/null || die "docker is not installed"
  docker info >/dev/null 2>&1 || die "no Docker engine answers (docker info failed): start one, or run this elsewhere"
}

# A tool from PATH, else the project's cache (built from the Go module proxy when missing).
tool() {
  local name=$1 cached=$2 build=$3
  if command -v "$name" >/dev/null; then command -v "$name"; return; fi
  if [ ! -x "$cached" ]; then
    log "building $name into $cached"
    eval "$build" >&2
  fi
  printf '%s\n' "$cached"
}

kind_bin() {
  local dir=$cache/bin/kind-$kind_version
  tool kind "$dir/kind" "mkdir -p '$dir' && GOBIN='$dir' CGO_ENABLED=0 go install sigs.k8s.io/kind@$kind_version"
}

k8s_version() { sed -nE 's/^K8S_VERSION="\$\{K8S_VERSION:-([^}]+)\}"$/\1/p' "$repo/e2e/cluster/build-binaries.sh"; }
helm_version() { sed -nE 's/^HELM_VERSION="\$\{HELM_VERSION:-([^}]+)\}"$/\1/p' "$repo/e2e/cluster/build-binaries.sh"; }
kubectl_bin() { tool kubectl "$cache/bin/kubernetes-$(k8s_version)/kubectl" "'$repo/e2e/cluster/build-binaries.sh' kubernetes"; }
helm_bin() { tool helm "$cache/bin/helm-$(helm_version)/helm" "'$repo/e2e/cluster/build-binaries.sh' helm"; }

kc() { "$(kubectl_bin)" --kubeconfig="$kubeconfig" "$@"; }
hc() { "$(helm_bin)" --kubeconfig="$kubeconfig" "$@"; }

# The build context each Dockerfile declares: "Build context: the repository root" or its folder.
build_context() {
  if grep -q '^# Build context: the repository root' "$1/Dockerfile" \
    || grep -q '^# .*Build context: the repository root' "$1/Dockerfile"; then
    printf '%s\n' "$repo"
  else
    printf '%s\n' "$1"
  fi
}

images() {
  need_docker
  local revision dir name
  revision=$(git -C "$repo" rev-parse HEAD 2>/dev/null || echo unknown)
  for dir in "$repo"/images/*/; do
    dir=${dir%/}
    name=${dir##*/}
    [ -f "$dir/Dockerfile" ] || continue
    log "docker build $registry/$name:$tag"
    docker build -f "$dir/Dockerfile" \
      --build-arg "VERSION=$tag" --build-arg "REVISION=$revision" \
      -t "$registry/$name:$tag" "$(build_context "$dir")"
  done
}

up() {
  need_docker
  local kind
  kind=$(kind_bin)
  mkdir -p "$state"
  if "$kind" get clusters 2>/dev/null | grep -qx "$cluster"; then
    log "kind cluster $cluster exists"
    "$kind" get kubeconfig --name "$cluster" > "$kubeconfig"
  else
    local image_args=()
    if [ -n "${KIND_NODE_IMAGE:-}" ]; then image_args=(--image "$KIND_NODE_IMAGE"); fi
    "$kind" create cluster --name "$cluster" --config "$repo/hack/kind-config.yaml" \
      --kubeconfig "$kubeconfig" "${image_args[@]}" --wait 180s
  fi
  chmod 600 "$kubeconfig"
  # kind v0.24.0 and later enforce NetworkPolicy with kindnet; older ones silently do not.
  local version
  version=$("$kind" version | sed -nE 's/^kind v0\.([0-9]+)\..*/\1/p')
  if [ -n "$version" ] && [ "$version" -lt 24 ]; then
    die "kind $("$kind" version) does not enforce NetworkPolicy: use v0.24.0 or later"
  fi
  kc wait --for=condition=Ready nodes --all --timeout=180s
}

load() {
  local kind dir name
  kind=$(kind_bin)
  for dir in "$repo"/images/*/; do
    dir=${dir%/}
    name=${dir##*/}
    [ -f "$dir/Dockerfile" ] || continue
    "$kind" load docker-image --name "$cluster" "$registry/$name:$tag"
  done
}

install() {
  local control_plane_ip
  control_plane_ip=$(kc get nodes -l node-role.kubernetes.io/control-plane \
    -o jsonpath='{.items[0].status.addresses[?(@.type=="InternalIP")].address}')
  kc create namespace "$namespace" --dry-run=client -o yaml | kc apply -f -
  kc label namespace "$namespace" --overwrite \
    pod-security.kubernetes.io/enforce=restricted pod-security.kubernetes.io/warn=restricted
  # Tenants' proxies are NodePort Services here (no load balancer in kind). The cluster networks
  # are kind's pod and service ranges; the API server reaches log stores from the control plane.
  hc upgrade --install "$release" "$repo/charts/swg-operator" --namespace "$namespace" \
    --set "image.repository=$registry/operator" --set "image.tag=$tag" \
    --set "dataplane.images.proxy.repository=$registry/proxy" --set "dataplane.images.proxy.tag=$tag" \
    --set "dataplane.images.antivirus.repository=$registry/antivirus" --set "dataplane.images.antivirus.tag=$tag" \
    --set "dataplane.images.logstore.repository=$registry/logstore" --set "dataplane.images.logstore.tag=$tag" \
    --set "dataplane.clusterCIDRs={10.244.0.0/16,10.96.0.0/16}" \
    --set "dataplane.apiServerCIDRs={$control_plane_ip/32}" \
    --set "dataplane.proxyServiceType=NodePort" \
    --wait --timeout 5m
  hc test "$release" --namespace "$namespace" --timeout 3m
}

run_tests() {
  cd "$repo"
  # First the chart's own tests, with the operator the chart runs in the cluster. Then the rest
  # of the tier, which starts operators of its own as local processes: the in-cluster one is
  # scaled to zero meanwhile, so that two operators never reconcile the same tenants.
  # shellcheck disable=SC2086  # PYTEST_ARGS is a list of words on purpose
  SWG_E2E_KUBECONFIG="$kubeconfig" SWG_E2E_CHART_RELEASE="$namespace/$release" \
    "$repo/.venv/bin/python" -m pytest e2e/chart/ ${PYTEST_ARGS:-}
  kc -n "$namespace" scale deployment "$release" --replicas=0
  kc -n "$namespace" wait --for=delete pod -l app.kubernetes.io/instance="$release",app.kubernetes.io/component=operator --timeout=120s
  local status=0
  # shellcheck disable=SC2086
  SWG_E2E_KUBECONFIG="$kubeconfig" \
    "$repo/.venv/bin/python" -m pytest e2e -m "not dataplane and not images" --ignore=e2e/chart ${PYTEST_ARGS:-} \
    || status=$?
  kc -n "$namespace" scale deployment "$release" --replicas=1
  return "$status"
}

down() {
  local kind
  kind=$(kind_bin)
  "$kind" delete cluster --name "$cluster"
  rm -f "$kubeconfig"
}

case "${1:-all}" in
  all) images; up; load; install; run_tests ;;
  images) images ;;
  up) up ;;
  load) load ;;
  install) install ;;
  test) run_tests ;;
  down) down ;;
  *) die "usage: $0 [all|images|up|load|install|test|down]" ;;
esac
