#!/bin/sh
# Entrypoint of the proxy image: prepares the writable state Squid needs, then runs Squid in the
# foreground as the container's main process (it handles SIGTERM itself).
#
# Layout (the operator renders squid.conf to match it):
#   $SWG_CONF_DIR   read-only: squid.conf, ACL list files, custom error pages ERR_*  (ConfigMap)
#   $SWG_TLS_DIR    read-only: tls.crt / tls.key of the tenant's inspection CA        (Secret)
#   $SWG_STATE_DIR  writable:  squid/{run,logs,ssl_db,errors}                        (emptyDir)
#   /dev/shm        writable:  Squid's shared memory segments, even with -N          (emptyDir, Memory)
#   /tmp            writable                                                         (emptyDir)
# The root filesystem can be read-only. The image runs as UID/GID 10001.
#
# Arguments are passed to Squid (for example `-k parse` to check a configuration).
set -eu

conf_dir=${SWG_CONF_DIR:-/etc/swg/conf}
state_dir=${SWG_STATE_DIR:-/var/lib/swg}
squid_conf=${SWG_SQUID_CONF:-$conf_dir/squid.conf}
errors_lang=${SWG_ERRORS_LANG:-en}
stock_errors=/usr/share/squid/errors/$errors_lang

log() { printf 'swg-proxy-entrypoint: %s\n' "$*" >&2; }

if [ ! -r "$squid_conf" ]; then
    log "no readable Squid configuration at $squid_conf"
    exit 64
fi

squid_state=$state_dir/squid
mkdir -p "$squid_state/run" "$squid_state/logs"

# Certificate cache for HTTPS inspection. security_file_certgen -c refuses an existing
# directory, so it is created under a temporary name and renamed: a crash half-way through
# never leaves a directory that looks initialised.
ssl_db=$squid_state/ssl_db
if [ ! -d "$ssl_db" ]; then
    rm -rf "$ssl_db.init"
    /usr/lib/squid/security_file_certgen -c -s "$ssl_db.init" -M "${SWG_SSL_DB_SIZE:-16MB}" >/dev/null
    mv "$ssl_db.init" "$ssl_db"
fi

# Without HTTPS inspection Squid still needs a certificate on its ssl-bump port (it only reads
# the TLS client hello, to filter by server name, and shows the certificate on nothing but a
# refused CONNECT). squid.conf names $state_dir/squid/peek-tls/ for it: a self-signed one is
# made here, once per pod, so its key never leaves the pod (no ConfigMap, no Secret). openssl
# comes with ca-certificates.
peek_tls=$squid_state/peek-tls
if grep -q "$peek_tls/tls.key" "$squid_conf" && [ ! -s "$peek_tls/tls.key" ]; then
    rm -rf "$peek_tls.init"
    mkdir -m 0700 "$peek_tls.init"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
        -subj "/CN=swg-gateway.invalid" -keyout "$peek_tls.init/tls.key" \
        -out "$peek_tls.init/tls.crt" 2>/dev/null
    rm -rf "$peek_tls"
    mv "$peek_tls.init" "$peek_tls"
fi

# error_directory holds every page Squid may send: the stock templates of one language plus the
# tenant's own pages (ERR_* in the configuration directory, which override stock ones).
# Symlinks keep it cheap and follow ConfigMap updates.
errors=$squid_state/errors
rm -rf "$errors.new"
mkdir -p "$errors.new"
for page in "$stock_errors"/* "$conf_dir"/ERR_*; do
    [ -f "$page" ] || continue
    ln -sf "$page" "$errors.new/${page##*/}"
done
rm -rf "$errors"
mv "$errors.new" "$errors"

if [ "$#" -gt 0 ]; then
    exec /usr/sbin/squid -f "$squid_conf" "$@"
fi
# -N: no daemon mode, one process (SMP workers would need more shared memory); -d 1 copies
# important cache.log lines to stderr so that they reach the container log.
exec /usr/sbin/squid -N -d "${SWG_SQUID_STDERR_LEVEL:-1}" -f "$squid_conf"
