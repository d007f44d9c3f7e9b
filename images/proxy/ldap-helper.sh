#!/bin/sh
# swg-ldap-helper auth|group ARGS_FILE
# Runs one of Squid's LDAP helpers (spec.authentication.ldap) with the arguments listed in
# ARGS_FILE, one a line, as the operator renders them into the configuration directory: the
# directory's DNs and filters hold spaces, parentheses and '%', which squid.conf's word splitting
# would break, so they never pass through it or a shell. The bind password is not in the file:
# the helpers read it from the mounted Secret (-W).
#
# The directory's certificate is checked against the image's CA bundle, always (LDAPTLS_*:
# the helpers use libldap's defaults otherwise, and the image has no ldap.conf).
set -eu

case "${1:-}" in
    auth) helper=/usr/lib/squid/basic_ldap_auth ;;
    group) helper=/usr/lib/squid/ext_ldap_group_acl ;;
    *)
        printf 'usage: swg-ldap-helper auth|group ARGS_FILE\n' >&2
        exit 64
        ;;
esac
args_file=${2:?usage: swg-ldap-helper auth|group ARGS_FILE}

set --
while IFS= read -r arg || [ -n "$arg" ]; do
    set -- "$@" "$arg"
done < "$args_file"

LDAPTLS_CACERT=/etc/ssl/certs/ca-certificates.crt
LDAPTLS_REQCERT=demand
export LDAPTLS_CACERT LDAPTLS_REQCERT
exec "$helper" "$@"
