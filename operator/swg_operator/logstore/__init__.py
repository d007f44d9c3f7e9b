"""Tenant logs: the record format, the parsers of what Squid and c-icap write, the shipper that
moves records from the data-plane pods, and the per-tenant log store that keeps them.

Pure modules (no I/O, no clock): `formats` (the directives the data-plane templates use),
`records` (parsers and normalisers), `retention` (which days are kept), `layout` (file names).
I/O modules: `store` (files on the log volume), `server` (HTTP), `shipper` (tails the pods'
log files), `download` (the client half of `kubectl swg logs`). Nothing here imports the rest
of the operator, so the log store image installs it without kopf.
"""
