"""Judging the records side of the facts: log retention, the inspection CA, the notices and the
purge (pure, no I/O; see judge.py)."""

from __future__ import annotations

import datetime
from typing import Final

from swg_operator import naming
from swg_operator.commands.evidence.model import (
    CRYPTOGRAPHY,
    LOGGING,
    NOTIFICATION,
    REMOVAL,
    Check,
    Facts,
    Result,
    unknown,
)
from swg_operator.naming import Component
from swg_operator.notices.model import MailState, NoticeError, decode
from swg_operator.reconcile.ca_pair import certificate_expiry, load_certificate

RECENT_NOTICES: Final = 5


# --- logs ---------------------------------------------------------------------------------------


def _environment(facts: Facts, component: Component) -> dict[str, str] | None:
    for deployment in facts.deployments.items():
        if deployment["metadata"]["name"] != naming.workload_name(component):
            continue
        pod = ((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}
        env: dict[str, str] = {}
        for container in pod.get("containers") or ():
            env.update(
                {str(e["name"]): str(e.get("value", "")) for e in container.get("env") or ()}
            )
        return env
    return None


def retention(facts: Facts) -> Check:
    """The log store keeps what the contract says (its retention and legal hold settings) on
    its volume."""
    checked = "log store Deployment's settings, its PersistentVolumeClaim, spec.cancellation"
    if not facts.deployments.ok or not facts.claims.ok:
        reading = facts.deployments if not facts.deployments.ok else facts.claims
        return unknown(LOGGING, "retention", checked, reading)
    days = facts.contract_value("logs", "retentionDays")
    cancellation = facts.status.get("cancellation") or {}
    hold = (facts.spec or {}).get("cancellation", {}).get("legalHold")
    if hold is None:
        hold = cancellation.get("legalHold")
    env = _environment(facts, Component.LOGSTORE)
    claims = [str(c["metadata"]["name"]) for c in facts.claims.items()]
    problems = []
    if env is None:
        problems.append("no log store Deployment")
    else:
        if days is not None and env.get("SWG_LOG_RETENTION_DAYS") != str(days):
            problems.append(
                f"log store keeps {env.get('SWG_LOG_RETENTION_DAYS')} days, contract {days}"
            )
        if hold is not None and (env.get("SWG_LOG_LEGAL_HOLD") == "true") != bool(hold):
            held = "on" if hold else "off"
            problems.append(f"log store legal hold not {held} as the tenant's is")
    if naming.log_volume_claim_name() not in claims:
        problems.append(f"no log volume claim {naming.log_volume_claim_name()}")
    data = {
        "retentionDays": days,
        "timeZone": facts.contract_value("logs", "timeZone"),
        "legalHold": hold,
        "claims": claims,
    }
    return Check(
        LOGGING,
        "retention",
        checked,
        Result.FAIL if problems else Result.PASS,
        "; ".join(problems)
        or f"logs kept {days} days including today{' under a legal hold' if hold else ''}",
        data,
    )


# --- HTTPS inspection CA ------------------------------------------------------------------------


def inspection_ca(facts: Facts, now: datetime.datetime) -> Check:
    """The generated CA's certificate: its age, and that it is neither expired nor within the
    warning period (ca_pair.EXPIRY_WARNING)."""
    name = naming.inspection_ca_certificate_name()
    checked = f"ConfigMap {name}, key ca.crt"
    enabled = facts.contract_value("options", "httpsInspection", "enabled")
    if enabled is None:
        return Check(CRYPTOGRAPHY, "inspectionCa", checked, Result.UNKNOWN, "contract not readable")
    if not enabled:
        return Check(
            CRYPTOGRAPHY, "inspectionCa", checked, Result.NOT_APPLICABLE, "HTTPS inspection off"
        )
    if facts.contract_value("options", "httpsInspection", "customerCA"):
        return Check(
            CRYPTOGRAPHY,
            "inspectionCa",
            checked,
            Result.NOT_APPLICABLE,
            "the customer's own CA (its expiry shows in the status conditions)",
        )
    if facts.ca_certificate.status not in (200, 404):
        return unknown(CRYPTOGRAPHY, "inspectionCa", checked, facts.ca_certificate)
    pem = facts.ca_certificate.data().get("ca.crt", "")
    expiry = certificate_expiry(pem, now=now, where=name) if pem else None
    if expiry is None:
        return Check(
            CRYPTOGRAPHY, "inspectionCa", checked, Result.FAIL, "no readable CA certificate"
        )
    cert = load_certificate(pem)
    age = (now - cert.not_valid_before_utc).days if cert is not None else None
    return Check(
        CRYPTOGRAPHY,
        "inspectionCa",
        checked,
        Result.FAIL if expiry.expiring else Result.PASS,
        f"{age} days old; {expiry.message}",
        {"ageDays": age, "notAfter": expiry.not_after, "state": expiry.reason},
    )


# --- notices ------------------------------------------------------------------------------------


def notices(facts: Facts) -> Check:
    """The notice history is kept and readable, and no mail of it failed."""
    checked = f"ConfigMap {naming.notices_config_map_name()}"
    if facts.notices.status == 404 and facts.phase:
        return Check(NOTIFICATION, "notices", checked, Result.FAIL, "no notice history kept")
    if not facts.notices.ok:
        return unknown(NOTIFICATION, "notices", checked, facts.notices)
    try:
        history = decode(facts.notices.data())
    except NoticeError as err:
        return Check(NOTIFICATION, "notices", checked, Result.FAIL, f"damaged: {err}")
    failed = sum(d.state is MailState.FAILED for e in history.entries for d in e.deliveries)
    recent = [
        {
            "time": e.notice.time,
            "kind": str(e.notice.kind),
            "subject": e.notice.subject,
            "mail": sorted({str(d.state) for d in e.deliveries}),
        }
        for e in reversed(history.entries[-RECENT_NOTICES:])
    ]
    return Check(
        NOTIFICATION,
        "notices",
        checked,
        Result.FAIL if failed else Result.PASS,
        f"{len(history.entries)} notice(s) kept; {failed} mail(s) failed",
        recent,
    )


# --- removal ------------------------------------------------------------------------------------


def _parse_time(text: str) -> datetime.datetime | None:
    try:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def purge(facts: Facts, now: datetime.datetime) -> Check:
    """Not cancelled; or cancelled and the purge not overdue (a legal hold postpones it); or
    purged, with a receipt whose signature verifies when a public key was given."""
    checked = "status.cancellation, purge receipts in the operator's namespace"
    cancellation = facts.status.get("cancellation") or {}
    receipts = [str(r["metadata"]["name"]) for r in facts.receipts.items()]
    problems = []
    if cancellation:
        due = _parse_time(str(cancellation.get("purgeAt", "")))
        if (
            due is not None
            and now > due + datetime.timedelta(hours=1)
            and not cancellation.get("legalHold")
        ):
            problems.append(f"purge overdue since {cancellation.get('purgeAt')}")
        detail = (
            f"cancelled {cancellation.get('cancelledAt')}, purge due {cancellation.get('purgeAt')}"
        )
        if cancellation.get("legalHold"):
            detail += " (postponed by a legal hold)"
    elif facts.tenant_reading.status == 404:
        detail = "tenant purged" if receipts else "no such tenant"
        if not receipts and facts.receipts.ok:
            problems.append("no purge receipt")
    else:
        detail = "not cancelled"
    for name, found in sorted((facts.receipt_verdicts or {}).items()):
        problems += [f"receipt {name}: {p}" for p in found]
    if receipts:
        detail += f"; receipt(s) {', '.join(receipts)}"
        detail += (
            " verified"
            if facts.receipt_verdicts is not None
            else " (signatures not checked: no public key)"
        )
    result = Result.FAIL if problems else Result.PASS
    if not cancellation and facts.tenant_reading.status == 404 and not facts.receipts.ok:
        result = Result.UNKNOWN
    return Check(
        REMOVAL,
        "purge",
        checked,
        result,
        "; ".join([*problems, detail]) if problems else detail,
        {"cancellation": cancellation or None, "receipts": receipts},
    )
