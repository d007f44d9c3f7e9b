"""Step 2 of the reconcile (`reconcile.loop`): the Secrets the operator generates for a tenant,
the only places that make one. Each returns the certificate to publish and, before the tenant
namespace exists, the Secret to create once it does (`pending`, created by `apply_plan` after
the namespace): nothing is written here.

* `settle_ca`: the HTTPS-inspection CA (`reconcile.secrets`);
* `settle_listener`: the TLS listener's server certificate (`reconcile.access_cert`).

Neither generates anything for a cancelled tenant, and the loop calls them only for a tenant its
step 0 admitted.
"""

from __future__ import annotations

from swg_operator.reconcile.access_cert import AccessCertificate, settle_access_certificate
from swg_operator.reconcile.context import Context, guard
from swg_operator.reconcile.report import Inputs
from swg_operator.reconcile.secret_reads import SecretMemory
from swg_operator.reconcile.secrets import InspectionCa, settle_inspection_ca
from swg_operator.render import Lifecycle, generates_access_certificate, generates_inspection_ca


async def settle_ca(inputs: Inputs, ctx: Context) -> InspectionCa:
    """The generated HTTPS-inspection CA's certificate to publish (`reconcile.secrets`)."""
    if inputs.spec is None or inputs.problems or not generates_inspection_ca(inputs.spec):
        return InspectionCa()
    return await guard(
        settle_inspection_ca(
            ctx.kube,
            tenant=inputs.name,
            spec=inputs.spec,
            namespace=inputs.namespace,
            observed=inputs.observed,
            now=ctx.clock(),
            create=inputs.lifecycle is not Lifecycle.CANCELLED,
            memory=secret_memory(inputs, ctx),
        )
    )


def secret_memory(inputs: Inputs, ctx: Context) -> SecretMemory:
    """Where this reconcile remembers what it verified of the tenant's CA Secrets."""
    generation = int(inputs.body["metadata"].get("generation") or 0)
    return SecretMemory(inputs.name, generation, ctx.secret_checks)


async def settle_listener(inputs: Inputs, ctx: Context) -> AccessCertificate:
    """The TLS listener's generated certificate to publish (`reconcile.access_cert`)."""
    if inputs.spec is None or inputs.problems or not generates_access_certificate(inputs.spec):
        return AccessCertificate()
    return await guard(
        settle_access_certificate(
            ctx.kube,
            tenant=inputs.name,
            spec=inputs.spec,
            namespace=inputs.namespace,
            observed=inputs.observed,
            now=ctx.clock(),
            create=inputs.lifecycle is not Lifecycle.CANCELLED,
        )
    )
