#!/usr/bin/env bash
# Installs the independent analysers the security tests run (docs/security.md), each pinned and
# cached by version under ${SWG_CACHE:-~/.cache/swg-operator}; one already present is reused.
#
#   netpolicy  np-guard netpol-analyzer, from the Go module proxy -> bin/netpolicy-<v>/netpolicy
#   nca        network-config-analyzer, from PyPI, in its own venv -> venvs/nca-<v>/bin/nca
#   checkov    checkov, from PyPI, in its own venv -> venvs/checkov-<v>/bin/checkov
#
# The two Python tools get venvs of their own, outside the project's: checkov brings ~100
# packages (~290 MB) and pins `packaging` below the project's version, and nca pins PyYAML.
#
# Usage: install-analyzers.sh [all|netpolicy|nca|checkov]
set -euo pipefail

NETPOLICY_VERSION="${NETPOLICY_VERSION:-v1.4.4}"
NCA_VERSION="${NCA_VERSION:-2.1.0}"
CHECKOV_VERSION="${CHECKOV_VERSION:-3.3.30}"
CACHE="${SWG_CACHE:-$HOME/.cache/swg-operator}"
PYTHON="${PYTHON:-python3}"
export GOWORK=off GOFLAGS=-buildvcs=false GOTOOLCHAIN=local

log() { printf '[install-analyzers] %s\n' "$*" >&2; }

# One build at a time per cache: two `make setup` runs (two checkouts, or CI beside a developer)
# would otherwise build into the same folders and move each other's half-built output away.
mkdir -p "$CACHE"
exec 9>"$CACHE/.install-analyzers.lock"
if ! flock -n 9; then log "another build holds $CACHE/.install-analyzers.lock: waiting for it"; flock 9; fi

install_netpolicy() {
  local out="$CACHE/bin/netpolicy-$NETPOLICY_VERSION"
  if [ -x "$out/netpolicy" ]; then log "netpolicy $NETPOLICY_VERSION cached in $out"; return; fi
  local module=github.com/np-guard/netpol-analyzer
  local work="$CACHE/src/netpolicy-$NETPOLICY_VERSION"
  mkdir -p "$work" "$out.tmp"
  cd "$work"
  log "building netpolicy $NETPOLICY_VERSION"
  # `go install pkg@version` asks the proxy for the module's version list (refused here), so
  # build from a wrapper module. The checksum database does not know every dependency
  # (np-guard/models): seed go.sum from the analyser's own go.sum, which the verified module
  # download pins, so no dependency is taken unverified.
  local dir
  dir=$(go mod download -json "$module@$NETPOLICY_VERSION" | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
  cat > go.mod <<MOD
module swg-operator.local/netpolicy-build

go 1.24
MOD
  cp "$dir/go.sum" go.sum
  chmod u+w go.sum
  go get -tool "$module/cmd/netpolicy@$NETPOLICY_VERSION"
  CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$out.tmp/netpolicy" "$module/cmd/netpolicy"
  rm -rf "$out"; mv "$out.tmp" "$out"
  log "netpolicy $NETPOLICY_VERSION built into $out"
}

python_tool() {  # python_tool NAME PACKAGE VERSION BINARY
  local name=$1 package=$2 version=$3 binary=$4
  local venv="$CACHE/venvs/$name-$version"
  if [ -x "$venv/bin/$binary" ] && [ -f "$venv/.installed" ]; then
    log "$name $version cached in $venv"; return
  fi
  log "installing $package==$version into $venv"
  rm -rf "$venv"
  "$PYTHON" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check "$package==$version"
  touch "$venv/.installed"
  log "$name $version installed in $venv"
}

what="${1:-all}"
case "$what" in
  all)
    install_netpolicy
    python_tool nca network-config-analyzer "$NCA_VERSION" nca
    python_tool checkov checkov "$CHECKOV_VERSION" checkov
    ;;
  netpolicy) install_netpolicy ;;
  nca) python_tool nca network-config-analyzer "$NCA_VERSION" nca ;;
  checkov) python_tool checkov checkov "$CHECKOV_VERSION" checkov ;;
  *) echo "usage: $0 [all|netpolicy|nca|checkov]" >&2; exit 2 ;;
esac
