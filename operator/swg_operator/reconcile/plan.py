"""Desired x observed -> what to apply and what to prune. Pure: no I/O, no clock.

An object is applied when it is missing, when its content differs from the desired manifest
(drift: edited by hand), or when the desired manifest itself changed since the last apply (its
digest, stamped on the object as an annotation, differs: this catches fields the desired state
dropped, which a subset comparison cannot see). Everything else is left alone, so a tenant whose
objects are as desired costs no API write.

Pruning: everything observed under the tenant's ownership labels that the desired state does
not contain is deleted, except the Namespace, the log store's volume claim and the published
inspection CA certificate, which only the purge removes (a spec change must never destroy the
customer's logs, nor the record of a CA the customer's clients trust).
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, NamedTuple

from swg_operator.naming import inspection_ca_certificate_name, log_volume_claim_name
from swg_operator.quantities import same_quantity

APPLIED_DIGEST_ANNOTATION: Final = "swg.dev/applied-digest"


class ObjectKey(NamedTuple):
    api_version: str
    kind: str
    namespace: str | None
    name: str

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind}/{where}{self.name}"


def key_of(obj: Mapping[str, Any]) -> ObjectKey:
    meta = obj.get("metadata", {})
    return ObjectKey(
        str(obj.get("apiVersion", "")),
        str(obj.get("kind", "")),
        meta.get("namespace") or None,
        str(meta.get("name", "")),
    )


def manifest_digest(obj: Mapping[str, Any]) -> str:
    """Digest of a desired manifest, ignoring its own digest annotation."""
    clean = dict(obj)  # copied only where it differs: json.dumps changes nothing
    meta = clean.get("metadata", {})
    annotations = meta.get("annotations")
    if isinstance(annotations, dict):
        kept = {k: v for k, v in annotations.items() if k != APPLIED_DIGEST_ANNOTATION}
        meta = {k: v for k, v in meta.items() if k != "annotations"}
        if kept:
            meta["annotations"] = kept
        clean["metadata"] = meta
    canonical = json.dumps(clean, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:20]


def with_digest(obj: Mapping[str, Any], digest: str | None = None) -> dict[str, Any]:
    """A copy of `obj` carrying `digest` (by default its own manifest digest) as an
    annotation."""
    stamped = copy.deepcopy(dict(obj))
    meta = stamped.setdefault("metadata", {})
    annotations = meta.setdefault("annotations", {})
    annotations[APPLIED_DIGEST_ANNOTATION] = digest or manifest_digest(obj)
    return stamped


def carries(desired: Mapping[str, Any], observed: Mapping[str, Any] | None, digest: str) -> bool:
    """`contains(with_digest(desired, digest), observed)`, without the copy: `observed` has
    every field of `desired` and the digest annotation `digest`."""
    if observed is None:
        return False
    annotations = (desired.get("metadata") or {}).get("annotations") or {}
    if APPLIED_DIGEST_ANNOTATION in annotations:  # a digest of its own, which `digest` replaces
        return contains(with_digest(desired, digest), observed)
    stored = (observed.get("metadata") or {}).get("annotations") or {}
    return stored.get(APPLIED_DIGEST_ANNOTATION) == digest and contains(desired, observed)


def _scalar_equal(want: Any, have: Any) -> bool:
    if want == have and type(want) is type(have):
        return True
    if isinstance(want, str) and isinstance(have, str):
        # The API server canonicalises quantities ("1000m" is stored as "1").
        return same_quantity(want, have)
    if isinstance(want, bool) or isinstance(have, bool):
        return False
    if isinstance(want, int | float) and isinstance(have, int | float):
        return want == have
    return False


def _empty(value: Any) -> bool:
    """The API server drops empty lists, maps and nulls: they match an absent field."""
    return value is None or (isinstance(value, Mapping | list | tuple) and not value)


def contains(want: Any, have: Any) -> bool:
    """True when every field of `want` is in `have` with an equal value (lists compare item by
    item and must have the same length; fields the server added to `have` are ignored, and empty
    values match absent ones)."""
    if isinstance(want, Mapping):
        return isinstance(have, Mapping) and all(
            contains(value, have[key]) if key in have else _empty(value)
            for key, value in want.items()
        )
    if isinstance(want, list | tuple):
        if have is None and not want:
            return True
        return (
            isinstance(have, list | tuple)
            and len(want) == len(have)
            and all(contains(w, h) for w, h in zip(want, have, strict=True))
        )
    return _scalar_equal(want, have)


def is_retained(key: ObjectKey) -> bool:
    """Objects only the purge may delete: the tenant's Namespace, its log store claim, and the
    published certificate of the generated HTTPS-inspection CA. The CA's Secret outlives a spec
    that stops using it (the operator may not delete Secrets), and its certificate is the
    operator's only record of it: the operator never reads the Secret back."""
    if key.kind == "Namespace":
        return True
    if key.kind == "ConfigMap":
        return key.name == inspection_ca_certificate_name()
    return key.kind == "PersistentVolumeClaim" and key.name == log_volume_claim_name()


def keep_fixed_fields(
    desired: Mapping[str, Any], observed: Mapping[str, Any] | None
) -> dict[str, Any]:
    """`desired` with the fields the API server will not change on an existing object taken
    from `observed`: a bound volume claim keeps its size and class (many storage classes cannot
    expand, none can shrink; a larger size from the sizing model applies to new claims only)."""
    if observed is None or desired.get("kind") != "PersistentVolumeClaim":
        return dict(desired)  # shares its values with `desired`: `with_digest` copies
    out = copy.deepcopy(dict(desired))
    have = observed.get("spec", {})
    spec = out.setdefault("spec", {})
    for name in ("storageClassName", "volumeName", "accessModes", "volumeMode"):
        if name in have:
            spec[name] = copy.deepcopy(have[name])
    storage = have.get("resources", {}).get("requests", {}).get("storage")
    if storage is not None:
        spec.setdefault("resources", {}).setdefault("requests", {})["storage"] = storage
    return out


@dataclass(frozen=True)
class Plan:
    """What one reconcile writes: `apply` in the renderer's order, then `prune`."""

    apply: tuple[dict[str, Any], ...]
    created: tuple[ObjectKey, ...]  # missing now
    updated: tuple[ObjectKey, ...]  # present, but not as desired
    prune: tuple[ObjectKey, ...]
    unchanged: tuple[ObjectKey, ...]
    digests: Mapping[ObjectKey, str] = field(default_factory=dict)  # each desired manifest's

    @property
    def writes(self) -> int:
        return len(self.apply) + len(self.prune)


def is_current(
    desired: Mapping[str, Any], observed: Mapping[str, Any] | None, digest: str | None = None
) -> bool:
    """True when `observed` is what applying `desired` (with `digest`, by default its own)
    would leave."""
    if observed is None or observed.get("metadata", {}).get("deletionTimestamp"):
        return False
    return carries(desired, observed, digest or manifest_digest(desired))


def applied_version(applied: Mapping[str, Any], stored: Mapping[str, Any]) -> tuple[str, str]:
    """What to remember after applying `applied` (as `plan_changes` made it, digest stamped):
    its digest and the stored resourceVersion."""
    annotations = (applied.get("metadata") or {}).get("annotations") or {}
    digest = annotations.get(APPLIED_DIGEST_ANNOTATION) or manifest_digest(applied)
    return str(digest), str(stored.get("metadata", {}).get("resourceVersion", ""))


def plan_changes(
    desired: Sequence[Mapping[str, Any]],
    observed: Iterable[Mapping[str, Any]],
    *,
    applied: Mapping[ObjectKey, tuple[str, str]] | None = None,
) -> Plan:
    """Compare `desired` (render order) with `observed` (listed by ownership label).

    `applied` remembers, per object, the digest last applied and the resourceVersion the server
    answered with: an object nobody touched since (same version) and whose desired manifest is
    the same is current even where the server normalises a field the comparison cannot see
    through, so such a quirk never turns into an apply on every reconcile.

    The digest stamped is the rendered manifest's: fields kept from the stored object
    (`keep_fixed_fields`, such as a claim's class the API server defaulted) never change it, so
    they never read as a changed desired state.
    """
    remembered = applied or {}
    seen = {key_of(obj): obj for obj in observed}
    apply: list[dict[str, Any]] = []
    created: list[ObjectKey] = []
    updated: list[ObjectKey] = []
    unchanged: list[ObjectKey] = []
    digests: dict[ObjectKey, str] = {}
    for wanted_obj in desired:
        key = key_of(wanted_obj)
        current = seen.get(key)
        digest = digests[key] = manifest_digest(wanted_obj)
        obj = keep_fixed_fields(wanted_obj, current)
        version = str((current or {}).get("metadata", {}).get("resourceVersion", ""))
        untouched = current is not None and remembered.get(key) == (digest, version)
        if untouched or is_current(obj, current, digest):
            unchanged.append(key)
            continue
        apply.append(with_digest(obj, digest))
        (created if current is None else updated).append(key)
    prune = tuple(key for key in seen if key not in digests and not is_retained(key))
    return Plan(
        apply=tuple(apply),
        created=tuple(created),
        updated=tuple(updated),
        prune=prune,
        unchanged=tuple(unchanged),
        digests=digests,
    )
