"""Step 2 of the reconcile (`reconcile.loop`): the Secrets the operator generates for a tenant,
the only places that make one. Each returns the certificate to publish and, before the tenant
namespace exists, the Secret to create once it does (`pending`, created by `apply_plan` after
the namespace): nothing is written here.

* `settle_ca`: the HTTPS-inspection CA (`reconcile.secrets`);
* `settle_listener`: the TLS listener's server certificate (`reconcile.access_cert`).

Both ask `settling` whether there is anything to do and with what: neither generates anything for
a cancelled tenant, and the loop calls them only for a tenant its step 0 admitted.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any, TypedDict

from swg_operator.api import SecureWebGatewaySpec
from swg_operator.reconcile.access_cert import AccessCertificate, settle_access_certificate
from swg_operator.reconcile.context import Context, guard
from swg_operator.reconcile.report import Inputs
from swg_operator.reconcile.secret_reads import SecretMemory
from swg_operator.reconcile.secrets import InspectionCa, settle_inspection_ca
from swg_operator.render import Lifecycle, generates_access_certificate, generates_inspection_ca


class Settling(TypedDict):
    """What both steps give their generator (`settle_inspection_ca`,
    `settle_access_certificate`)."""

    tenant: str
    spec: SecureWebGatewaySpec
    namespace: str
    observed: list[dict[str, Any]]
    now: datetime.datetime
    create: bool


def settling(
    inputs: Inputs, ctx: Context, generates: Callable[[SecureWebGatewaySpec], bool]
) -> Settling | None:
    """The generator's arguments, or None when it has nothing to do: no valid spec, a spec
    with problems, or one that does not have the operator generate this Secret. A cancelled
    tenant gets nothing new (`create` is False)."""
    spec = inputs.spec
    if spec is None or inputs.problems or not generates(spec):
        return None
    return Settling(
        tenant=inputs.name,
        spec=spec,
        namespace=inputs.namespace,
        observed=inputs.observed,
        now=ctx.clock(),
        create=inputs.lifecycle is not Lifecycle.CANCELLED,
    )


async def settle_ca(inputs: Inputs, ctx: Context) -> InspectionCa:
    """The generated HTTPS-inspection CA's certificate to publish (`reconcile.secrets`)."""
    args = settling(inputs, ctx, generates_inspection_ca)
    if args is None:
        return InspectionCa()
    memory = secret_memory(inputs, ctx)
    return await guard(settle_inspection_ca(ctx.kube, **args, memory=memory))


def secret_memory(inputs: Inputs, ctx: Context) -> SecretMemory:
    """Where this reconcile remembers what it verified of the tenant's CA Secrets."""
    generation = int(inputs.body["metadata"].get("generation") or 0)
    return SecretMemory(inputs.name, generation, ctx.secret_checks)


async def settle_listener(inputs: Inputs, ctx: Context) -> AccessCertificate:
    """The TLS listener's generated certificate to publish (`reconcile.access_cert`)."""
    args = settling(inputs, ctx, generates_access_certificate)
    if args is None:
        return AccessCertificate()
    return await guard(settle_access_certificate(ctx.kube, **args))
