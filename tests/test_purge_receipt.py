"""The purge receipt outlives the tenant: it names objects without personal data."""

from __future__ import annotations

import json

from swg_operator.naming import admin_binding_name, digest
from swg_operator.reconcile.purge import receipt_name
from test_purge_retention import after, delete, fresh, purge_until_done, setup, tenant


def test_the_receipt_names_no_admin() -> None:
    admins = [{"kind": "User", "name": "alice.smith@example.com"}, {"kind": "Group", "name": "ops"}]
    kube, ctx = setup(tenant(admins=admins, cancellation={"purgeAfterDays": 0}))
    bindings = [admin_binding_name(a["kind"], a["name"]) for a in admins]
    assert all(kube.find("RoleBinding", b, "swg-acme") is not None for b in bindings)
    delete(kube)
    kube.server_now = after(1)
    purge_until_done(kube, ctx)
    receipt = kube.find("ConfigMap", receipt_name(fresh(kube)), "swg-system")
    assert receipt is not None
    text = json.dumps(receipt)
    assert "alice" not in text
    for admin, binding in zip(admins, bindings, strict=True):
        assert binding not in text
        assert binding.rsplit("-", 1)[1] not in text  # nor the digest of the subject
        assert digest(admin["name"]) not in text
    inventory = json.loads(receipt["data"]["inventory.json"])
    assert len([i for i in inventory if i.startswith("RoleBinding/")]) == 2
