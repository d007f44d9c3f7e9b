#!/bin/sh
# Entrypoint of the anti-virus image. One image, several containers in the same pod, each
# running one daemon in the foreground as its main process:
#
#   swg-antivirus-entrypoint clamd           the ClamAV daemon, listening on a unix socket
#   swg-antivirus-entrypoint c-icap          the ICAP server whose virus_scan module asks clamd
#   swg-antivirus-entrypoint freshclam       keeps the public signature database current (a
#                                            native sidecar, with the freshclam signature source)
#   swg-antivirus-entrypoint database-ready  exit 0 once the databases in SWG_CLAMAV_REQUIRED
#                                            are complete (the freshclam sidecar's startup probe)
#   swg-antivirus-entrypoint c-icap-ready    exit 0 when c-icap answers with its scan engine,
#                                            1 without one, 2 no answer (c-icap's probes)
#
# Both containers mount the same writable emptyDir at $SWG_STATE_DIR: c-icap reaches clamd
# through the unix socket there and passes spooled bodies by file descriptor, so neither
# daemon needs the other's files. Any other command is run as is (for example `clamdscan`).
#
# Layout (the operator renders the configuration to match it):
#   $SWG_CONF_DIR   read-only: c-icap.conf, virus_scan.conf, clamd_mod.conf, clamd.conf,
#                   freshclam.conf, the platform's and the tenant's signature files
#                   (*.ndb, *.hsb, ...)                                            (ConfigMaps)
#   $SWG_STATE_DIR  writable:  clamd/ (socket, tmp), clamav/db/ (signatures),
#                   c-icap/ (tmp, logs, pid, control socket), freshclam/ (pid)      (emptyDir)
#   /tmp            writable                                                        (emptyDir)
# The root filesystem can be read-only. The image runs as UID/GID 10001.
set -eu

conf_dir=${SWG_CONF_DIR:-/etc/swg/conf}
state_dir=${SWG_STATE_DIR:-/var/lib/swg}
db_dir=${SWG_CLAMAV_DB_DIR:-$state_dir/clamav/db}
clamd_socket=${SWG_CLAMD_SOCKET:-$state_dir/clamd/clamd.sock}
# How long c-icap waits for clamd's socket: clamd loads its signatures first (a full public
# database takes tens of seconds), and c-icap's clamd module checks clamd when it starts.
clamd_wait=${SWG_CLAMD_WAIT_SECONDS:-120}
# Databases clamd must find before it starts (names without extension, e.g. "main daily"): set
# when a freshclam sidecar supplies the public database. Empty: start with what is there.
required=${SWG_CLAMAV_REQUIRED:-}
# How long clamd waits for them (the sidecar's first download).
database_wait=${SWG_CLAMAV_WAIT_SECONDS:-900}

log() { printf 'swg-antivirus-entrypoint: %s\n' "$*" >&2; }

need_file() {
    if [ ! -r "$1" ]; then
        log "missing configuration file $1"
        exit 64
    fi
}

# Custom signatures are copied, not linked: clamd's SelfCheck reloads when the database
# directory changes, and a freshclam sidecar may add the public database beside them.
install_signatures() {
    mkdir -p "$db_dir"
    found=0
    for sig in "$conf_dir"/*.ndb "$conf_dir"/*.hsb "$conf_dir"/*.hdb "$conf_dir"/*.ldb \
        "$conf_dir"/*.cdb "$conf_dir"/*.ign2 "$conf_dir"/*.fp "$conf_dir"/*.sfp \
        "$conf_dir"/*.msb "$conf_dir"/*.mdb "$conf_dir"/*.yar "$conf_dir"/*.yara; do
        [ -f "$sig" ] || continue
        cp "$sig" "$db_dir/${sig##*/}.tmp"
        mv "$db_dir/${sig##*/}.tmp" "$db_dir/${sig##*/}"
        found=$((found + 1))
    done
    log "installed $found custom signature file(s) into $db_dir"
}

# True when every database named in $required (default: main daily) is in the database
# directory, as a complete .cvd or an unpacked .cld (freshclam writes both atomically).
database_ready() {
    for name in ${required:-main daily}; do
        if [ ! -s "$db_dir/$name.cvd" ] && [ ! -s "$db_dir/$name.cld" ]; then
            return 1
        fi
    done
    return 0
}

wait_for_database() {
    [ -n "$required" ] || return 0
    tries=$((database_wait * 5))
    until database_ready; do
        if [ "$tries" -le 0 ]; then
            log "signature database ($required) absent from $db_dir after ${database_wait}s"
            exit 69
        fi
        sleep 0.2
        tries=$((tries - 1))
    done
}

run_clamd() {
    need_file "$conf_dir/clamd.conf"
    mkdir -p "$state_dir/clamd/tmp"
    wait_for_database
    install_signatures
    exec /usr/sbin/clamd --foreground --config-file="$conf_dir/clamd.conf"
}

# freshclam in daemon mode, in the foreground: an update at once, then `Checks` a day; it
# writes into the database directory clamd reads and asks clamd to reload (NotifyClamd).
run_freshclam() {
    need_file "$conf_dir/freshclam.conf"
    mkdir -p "$db_dir" "$state_dir/freshclam"
    exec /usr/bin/freshclam --daemon --foreground --stdout --config-file="$conf_dir/freshclam.conf"
}

clamd_answers() {
    clamdscan --ping 1 --config-file="$conf_dir/clamd.conf" >/dev/null 2>&1
}

# The ISTag c-icap's virus_scan service announces when no scan engine is registered: the
# base64 MD5 of nothing. c-icap's clamd module registers its engine only if clamd answered when
# c-icap started; without an engine, virus_scan answers every request "204, pass unchanged"
# (its log: "Antivirus engine is not available, allow 204"), whatever PassOnError says.
no_engine_istag=1B2M2Y8AsgTpgAmY

icap_settings() {
    icap_port=$(awk '$1 == "Port" { n = split($2, a, ":"); print a[n]; exit }' \
        "$conf_dir/c-icap.conf")
    icap_service=${SWG_ICAP_SERVICE:-avscan}
}

# 0: c-icap answers OPTIONS with a scan engine; 1: it answers without one; 2: no answer (yet).
c_icap_engine() {
    headers=$(c-icap-client -i 127.0.0.1 -p "$icap_port" -s "$icap_service" -v 2>&1) ||
        return 2
    case "$headers" in
        *"ISTag: "*"$no_engine_istag"*) return 1 ;;
        *"ISTag: "*) return 0 ;;
        *) return 2 ;;
    esac
}

# c-icap runs as a child of this script, which makes sure it never serves without clamd:
# * it starts c-icap only once clamd answers a ping (a socket file is not enough: clamd killed
#   with SIGKILL leaves it behind), and gives up (exit 69) after SWG_CLAMD_WAIT_SECONDS;
# * as soon as c-icap listens, and then every SWG_CLAMD_WATCH_SECONDS, it checks that c-icap
#   has its scan engine (clamd may have died between the ping and c-icap's start): without one,
#   c-icap is stopped at once and the container exits 69;
# * when clamd stops answering (SWG_CLAMD_WATCH_FAILURES pings in a row, one every
#   SWG_CLAMD_WATCH_SECONDS), c-icap is stopped and the container exits 69. Until then c-icap
#   answers an error for each scan (virus_scan.PassOnError off), never a pass logged clean.
# Squid then finds the scanner down and applies the tenant's choice (icap_service bypass=):
# fail closed, or fail open with "not scanned" in its access log. SWG_CLAMD_WATCH_FAILURES=0
# disables the clamd watch (not the engine checks).
run_c_icap() {
    need_file "$conf_dir/c-icap.conf"
    mkdir -p "$state_dir/c-icap/tmp" "$state_dir/c-icap/logs"
    # A stale pid file or control socket from a previous run in the same emptyDir would stop
    # c-icap from starting.
    rm -f "$state_dir/c-icap/c-icap.pid" "$state_dir/c-icap/c-icap.ctl"
    icap_settings
    tries=$((clamd_wait * 5))
    until clamd_answers; do
        if [ "$tries" -le 0 ]; then
            log "clamd ($clamd_socket) did not answer within ${clamd_wait}s; not starting c-icap"
            exit 69
        fi
        sleep 0.2
        tries=$((tries - 1))
    done

    watch_failures=${SWG_CLAMD_WATCH_FAILURES:-3}
    watch_seconds=${SWG_CLAMD_WATCH_SECONDS:-2}
    /usr/bin/c-icap -N -f "$conf_dir/c-icap.conf" &
    child=$!
    trap 'kill -TERM "$child" 2>/dev/null' TERM INT
    failures=0
    watchdog_stop=0
    # The first engine check, as soon as c-icap answers (then on every watch).
    engine=2
    tries=$((clamd_wait * 20))
    while [ "$engine" -eq 2 ] && [ "$tries" -gt 0 ] && kill -0 "$child" 2>/dev/null; do
        engine=0
        c_icap_engine || engine=$?
        [ "$engine" -eq 2 ] && sleep 0.05
        tries=$((tries - 1))
    done
    while kill -0 "$child" 2>/dev/null; do
        if [ "$engine" -eq 1 ] && [ "$watchdog_stop" -eq 0 ]; then
            log "c-icap has no scan engine (clamd was not answering when it started); stopping it"
            watchdog_stop=1
            kill -TERM "$child" 2>/dev/null || true
            break
        fi
        # sleep in the background: a signal interrupts `wait` at once, not `sleep`
        sleep "$watch_seconds" &
        wait $! || true
        engine=0
        c_icap_engine || engine=$?
        [ "$watch_failures" -le 0 ] && continue
        if clamd_answers; then
            failures=0
        else
            failures=$((failures + 1))
        fi
        if [ "$failures" -ge "$watch_failures" ] && [ "$watchdog_stop" -eq 0 ]; then
            log "clamd did not answer $failures pings; stopping c-icap (the scanner is down)"
            watchdog_stop=1
            kill -TERM "$child" 2>/dev/null || true
        fi
    done
    status=0
    wait "$child" || status=$?
    if [ "$watchdog_stop" -eq 1 ]; then
        exit 69
    fi
    exit "$status"
}

command=${1:-}
case "$command" in
    clamd) run_clamd ;;
    c-icap) run_c_icap ;;
    freshclam) run_freshclam ;;
    database-ready) database_ready ;;
    c-icap-ready)
        need_file "$conf_dir/c-icap.conf"
        icap_settings
        c_icap_engine
        ;;
    "")
        log "usage: swg-antivirus-entrypoint clamd|c-icap|freshclam|database-ready|c-icap-ready|COMMAND [ARGS...]"
        exit 64
        ;;
    *) exec "$@" ;;
esac
