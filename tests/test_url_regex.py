"""URL regexes are checked as Squid compiles them (POSIX extended, `regcomp` with
REG_EXTENDED | REG_NOSUB | REG_ICASE, as `url_regex -i`): an invalid one makes the tenant
`Stalled` naming the field, instead of reaching Squid, which fails or skips the rule."""

from __future__ import annotations

import re
import warnings

import pytest

from fakes import make_available
from swg_operator.api import SpecError, parse_spec
from swg_operator.posix_regex import posix_ere_error, url_regex_problems
from swg_operator.reconcile.loop import reconcile
from test_reconcile_loop import fresh, run, setup, tenant

# (pattern, valid for POSIX ERE as glibc's regcomp compiles it, valid for Python's re)
CASES = [
    ("^https?://([^/]+\\.)?tracker\\.test/", True, True),
    ("(unclosed", False, False),
    ("[z-a]", False, False),
    ("a{2,1}", False, False),
    ("[[:alpha:]]+\\.test", True, True),
    # Python's re accepts, POSIX rejects:
    ("(?i)casino", False, True),
    ("(?P<host>x)\\.test", False, True),
    ("[[:nosuchclass:]]", False, True),
    ("(?:non)capturing", False, True),
    # POSIX accepts, Python's re rejects:
    ("a**", True, False),
    ("x{1,2}{3}", True, False),
    ("[a]]", True, True),
    ("\\", False, False),
    ("unbalanced)", True, False),
]


def _python_accepts(pattern: str) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # "Possible nested set"
        try:
            re.compile(pattern)
        except re.error:
            return False
    return True


@pytest.mark.parametrize(("pattern", "posix", "python"), CASES)
def test_the_check_is_regcomp_not_python(pattern: str, posix: bool, python: bool) -> None:
    assert (posix_ere_error(pattern) is None) is posix, posix_ere_error(pattern)
    assert _python_accepts(pattern) is python  # the table is right about Python too


def test_problems_name_the_field() -> None:
    spec = parse_spec(
        {
            "serviceCode": "SWG-0001",
            "sizing": {"endpoints": 50, "requestsPerSecond": 20},
            "clients": {"allowedCIDRs": ["192.0.2.0/24"]},
            "urlFiltering": {
                "deny": {"urlRegex": ["^ok$", "(unclosed"]},
                "policies": [
                    {
                        "name": "staff",
                        "sourceCIDRs": ["192.0.2.0/25"],
                        "deny": {"urlRegex": ["[z-a]"]},
                    }
                ],
            },
        }
    )
    problems = url_regex_problems(spec)
    assert len(problems) == 2
    assert problems[0].startswith("spec.urlFiltering.deny.urlRegex[1]: '(unclosed'")
    assert problems[1].startswith("spec.urlFiltering.policies[0].deny.urlRegex[0]: '[z-a]'")
    with pytest.raises(SpecError):
        raise SpecError(problems)


def test_an_invalid_url_regex_stalls_the_tenant_naming_the_field() -> None:
    kube, ctx = setup(
        tenant(urlFiltering={"deny": {"urlRegex": ["^https?://ok\\.test/", "[z-a]"]}})
    )
    run(reconcile(fresh(kube), ctx=ctx))
    make_available(kube)
    outcome = run(reconcile(fresh(kube), ctx=ctx))
    assert outcome.result == "invalid_spec"
    conditions = {c["type"]: c for c in fresh(kube)["status"]["conditions"]}
    assert conditions["Stalled"]["status"] == "True"
    assert "spec.urlFiltering.deny.urlRegex[1]" in conditions["Stalled"]["message"]
    assert kube.find("ConfigMap", "proxy-config", "swg-acme") is None  # never rendered
