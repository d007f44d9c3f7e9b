#!/usr/bin/env bash
# Installs the Debian packages the project needs, only those missing. Runs as root (CI and the
# development machines do); prints what it would install otherwise.
# Usage: hack/install-apt.sh [package...]   (no arguments: what every tier needs)
set -euo pipefail
wanted=(openssl iproute2 debootstrap faketime wrk shellcheck curl ca-certificates procps util-linux
  # the real worker node: runtime, CNI plugins, helper image, packet filters
  runc containernetworking-plugins busybox-static iptables ipset nftables conntrack
  # the Argo CD health check under the standalone Lua 5.1 interpreter (tests/test_argocd_health_lua.py)
  lua5.1
  # the customer's LDAP directory of the data-plane tier (e2e/dataplane/directory.py): the test
  # runs its own slapd in its network namespace; the package's system service is never started
  slapd ldap-utils)
if [ $# -gt 0 ]; then wanted=("$@"); fi
missing=()
for p in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "Missing Debian packages: ${missing[*]} (run: sudo apt-get install ${missing[*]})" >&2
  exit 1
fi
echo "Installing Debian packages: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# Packages with a system service (slapd) must not start it on the host: a policy-rc.d that
# denies every start, for the time of the install, unless the machine has one already.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod 755 /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
