"""The lines of Squid list files (render.squid_acls): domains as dstdomain entries, URLs as
anchored url_regex prefixes."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from swg_operator.catalogue import parse_url
from swg_operator.render.squid_acls import dstdomain_lines, url_regex_lines


def test_dstdomain_lines_collapse_subdomains() -> None:
    lines = dstdomain_lines(
        ["a.test", "www.a.test", "deep.www.a.test", "b.a.example", "a.example", "192.0.2.1"]
    )
    # Sorted by reversed labels (parents first), each parent once, addresses without a dot.
    assert lines == ["192.0.2.1", ".a.example", ".a.test"]
    assert dstdomain_lines(["aa.test", "a.test"]) == [".a.test", ".aa.test"]


def test_url_regex_lines_match_the_entry_and_nothing_else() -> None:
    (line,) = url_regex_lines(["x.test/a.b?c=(1)"])
    assert line == r"^https?://([^/?@:]+\.)?x\.test(:[0-9]+)?/a\.b\?c=\(1\)"
    pattern = re.compile(line)
    assert pattern.match("http://x.test/a.b?c=(1)&more")
    assert pattern.match("https://www.x.test:8080/a.b?c=(1)")
    assert not pattern.match("http://x.test/aXb?c=(1)")
    assert not pattern.match("http://evilx.test/a.b?c=(1)")
    assert not pattern.match("http://x.test.evil.example/a.b?c=(1)")
    (with_port,) = url_regex_lines(["x.test:8080/"])
    assert with_port == r"^https?://([^/?@:]+\.)?x\.test:8080/"


@settings(max_examples=100)
@given(st.lists(st.text(), max_size=5))
def test_acl_lines_are_single_safe_lines(raw: list[str]) -> None:
    urls = []
    for entry in raw:
        try:
            urls.append(parse_url(entry))
        except ValueError:
            continue
    for line in url_regex_lines(urls):
        assert re.fullmatch(r"[!-~]+", line)
        assert "#" not in line
        assert '"' not in line
        re.compile(line)


def test_dstdomain_lines_write_every_entry_with_its_subdomains() -> None:
    # One rule for every domain entry: with or without a leading dot, the domain and its
    # subdomains (Squid's leading-dot spelling), never a longer name that merely ends alike.
    assert dstdomain_lines(["example.test"]) == [".example.test"]
    assert dstdomain_lines([".example.test"]) == [".example.test"]
    assert dstdomain_lines(["example.test", "xexample.test"]) == [".example.test", ".xexample.test"]
