"""Provisioning benchmark: N tenants at once through the operator, and the same objects through a
minimal server-side-apply client (the floor). `python -m bench.provision --help`."""
