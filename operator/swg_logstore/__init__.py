"""The tenant log store: a program that runs in the tenants' pods, not in the operator.

Pure modules (no I/O, no clock): `formats` (the directives the data-plane templates use),
`records` (parsers and normalisers), `retention` (which days are kept), `layout` (file names),
`batch` (a shipper's batch, validated). I/O modules: `store` (files on the log volume),
`durable` (atomic file replacement), `export` (download bodies), `server` (HTTP), `shipper`
(tails the pods' log files), `logs` (structured log lines of both programs). Entry point:
`python -m swg_logstore serve|ship` (console scripts `swg-logstore`).

Nothing here imports `swg_operator` (an import-linter contract in pyproject.toml checks it), so
the log store image runs it without kopf; the operator imports `formats` to write the daemons'
log directives, and its `kubectl swg logs` client (swg_operator.commands.log_download) talks to
`server` over HTTP.
"""
