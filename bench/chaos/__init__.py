"""Chaos runs: the operator SIGKILLed at random points, the API server paused, etcd restarted,
while tenants are created, changed and cancelled; then every invariant is checked.
`python -m bench.chaos --help`; the e2e test `e2e/test_chaos.py` runs a shorter scenario."""
