#!/bin/sh
# swg-ldap-helper auth|group ARGS_FILE [CA_FILE]
# Runs one of Squid's LDAP helpers (spec.authentication.ldap) with the arguments listed in
# ARGS_FILE, one a line, as the operator renders them into the configuration directory: the
# directory's DNs and filters hold spaces, parentheses and '%', which squid.conf's word splitting
# would break, so they never pass through it or a shell. The bind password is not in the file:
# the helpers read it from the mounted Secret (-W).
#
# The directory's certificate is always checked (LDAPTLS_REQCERT=demand), against CA_FILE when
# given (the customer's CA, spec.authentication.ldap.caSecret, mounted by the operator: those
# certificates only), else against the image's CA bundle. The helpers have no option of their
# own for it: libldap reads LDAPTLS_* from the environment (the image has no ldap.conf). A
# CA_FILE that is missing or holds no certificate fails every TLS connection: nothing is sent.
set -eu

case "${1:-}" in
    auth) helper=/usr/lib/squid/basic_ldap_auth ;;
    group) helper=/usr/lib/squid/ext_ldap_group_acl ;;
    *)
        printf 'usage: swg-ldap-helper auth|group ARGS_FILE [CA_FILE]\n' >&2
        exit 64
        ;;
esac
args_file=${2:?usage: swg-ldap-helper auth|group ARGS_FILE [CA_FILE]}
ca_file=${3:-/etc/ssl/certs/ca-certificates.crt}

set --
while IFS= read -r arg || [ -n "$arg" ]; do
    set -- "$@" "$arg"
done < "$args_file"

LDAPTLS_CACERT=$ca_file
LDAPTLS_REQCERT=demand
export LDAPTLS_CACERT LDAPTLS_REQCERT
exec "$helper" "$@"
