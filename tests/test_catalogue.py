"""The URL category catalogue: entry validation on the API's domain grammar, the blacklist
directory import, hostile input, the command and purity (ConfigMaps: test_catalogue_codec.py)."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from swg_operator import catalogue as catalogue_module
from swg_operator import cli
from swg_operator.api.types import DOMAIN_PATTERN, Domain, domain_name
from swg_operator.catalogue import (
    CatalogueError,
    Category,
    catalogue_from_configmaps,
    catalogue_to_configmaps,
    parse_domain,
    parse_entries,
    parse_url,
)
from swg_operator.catalogue_io import (
    load_blacklist_directory,
    read_blacklist_directory,
    read_configmap_file,
)
from swg_operator.commands.catalogue import configmaps_yaml

SAMPLE = Path(__file__).resolve().parent.parent / "examples" / "catalogue"

# What may reach a Squid ACL file line.
SAFE_DOMAIN = re.compile(r"[a-z0-9._-]+")
SAFE_URL = re.compile(r"[A-Za-z0-9._~!$&()*+,;=:@/?%-]+")
HOSTILE = ["\n", "\r", "#", " ", "\t", '"', "'", "`", "\\", "\u2028", "\u2029", "\x00", "\x85"]


def _write(directory: Path, files: dict[str, str | bytes]) -> Path:
    for relative, content in files.items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return directory


# ------------------------------------------------------------------------------------------------
# Entries
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("example.test", "example.test"),
        (".example.test", "example.test"),
        ("*.example.test", "example.test"),
        ("Example.TEST.", "example.test"),
        ("www.my_host.example", "www.my_host.example"),
        ("bücher.test", "xn--bcher-kva.test"),
        ("xn--bcher-kva.test", "xn--bcher-kva.test"),
        ("a.xn--p1ai", "a.xn--p1ai"),
        ("192.0.2.1", "192.0.2.1"),
    ],
)
def test_domain_forms(raw: str, canonical: str) -> None:
    assert parse_domain(raw) == canonical


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "not a domain"),
        ("localhost", "not a domain"),
        ("include", "not a domain"),
        ("-bad.test", "not a domain"),
        ("bad-.test", "not a domain"),
        ("a..test", "not a domain"),
        ("a.test/path", "not a domain"),
        ("a.123", "not a domain"),
        ("a.test:80", "not a domain"),
        ("**.a.test", "not a domain"),
        ("a" * 64 + ".test", "not a domain"),
        (".".join(["a" * 60] * 5) + ".test", "longer than 253"),
        ("xn--zz.test", "punycode"),
        ("xn--a.test", "punycode"),
        ("999.0.2.1", "IPv4"),
        ("a b.test", "whitespace"),
        ("a.test #comment", "whitespace"),
        ("a#b.test", "'#'"),
        ('"a.test"', "quote"),
        ("a\\.test", "backslash"),
        ("a.test\u2028include /etc/passwd", "whitespace"),
        ("a\u200b.test", "control"),
        ("ü\x00.test", "control"),
    ],
)
def test_domain_refused_with_a_reason(raw: str, reason: str) -> None:
    with pytest.raises(ValueError, match=re.escape(reason)):
        parse_domain(raw)


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("example.test/path", "example.test/path"),
        ("http://Example.TEST/Path/File.EXE", "example.test/Path/File.EXE"),
        ("HTTPS://example.test:8443/a?b=c&d=%20", "example.test:8443/a?b=c&d=%20"),
        ("example.test", "example.test/"),
        ("bücher.test/x", "xn--bcher-kva.test/x"),
    ],
)
def test_url_forms(raw: str, canonical: str) -> None:
    assert parse_url(raw) == canonical


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("example.test/a b", "whitespace"),
        ("example.test/a#frag", "'#'"),
        ("example.test/it's", "quote"),
        ("example.test/a\\b", "backslash"),
        ("example.test/<script>", "RFC 3986"),
        ("example.test/%zz", "RFC 3986"),
        ("example.test/caf\u00e9", "RFC 3986"),
        ("example.test:0/", "port"),
        ("example.test:99999/", "port"),
        (".example.test/x", "must not start"),
        ("user@example.test/x", "host"),
        ("ftp://example.test/x", "http:// or https://"),
        ("include/etc/passwd", "host"),
    ],
)
def test_url_refused_with_a_reason(raw: str, reason: str) -> None:
    with pytest.raises(ValueError, match=re.escape(reason)):
        parse_url(raw)


label_st = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
domain_st = st.builds(
    lambda labels, tld: ".".join([*labels, tld]),
    st.lists(label_st, min_size=1, max_size=3),
    st.sampled_from(["test", "example", "xn--p1ai"]),
)
hostile_st = st.sampled_from(HOSTILE)


@settings(max_examples=200)
@given(
    prefix=st.one_of(st.just(""), domain_st),
    hostile=hostile_st,
    suffix=st.one_of(st.just(""), domain_st, st.just(" include /etc/passwd"), st.text()),
    kind=st.sampled_from([parse_domain, parse_url]),
)
def test_hostile_characters_are_never_accepted(
    prefix: str, hostile: str, suffix: str, kind: Any
) -> None:
    with pytest.raises(ValueError, match=r"whitespace|control|'#'|quote|backslash|long"):
        kind(prefix + hostile + suffix)


@settings(max_examples=300)
@given(st.text())
def test_whatever_is_accepted_is_safe_for_an_acl_file(raw: str) -> None:
    for parse, safe in ((parse_domain, SAFE_DOMAIN), (parse_url, SAFE_URL)):
        try:
            entry = parse(raw)
        except ValueError:
            continue
        assert safe.fullmatch(entry), entry
        assert parse(entry) == entry  # canonical forms are stable


@settings(max_examples=150)
@given(
    lines=st.lists(
        st.one_of(
            domain_st,
            st.text(),
            st.builds(lambda d, h, s: d + h + s, domain_st, hostile_st, st.text()),
        ),
        max_size=12,
    ),
    separator=st.sampled_from(["\n", "\r\n"]),
)
def test_a_list_file_never_yields_an_unsafe_entry(lines: list[str], separator: str) -> None:
    text = separator.join(lines)
    entries, issues = parse_entries(text, kind="domains", where="f", category="c")
    for entry in entries:
        assert SAFE_DOMAIN.fullmatch(entry), entry
    for issue in issues:
        assert re.fullmatch(r"f:[0-9]+", issue.where)


def test_unicode_line_separators_do_not_split_lines() -> None:
    text = "good.test\nbad.test\u2028include.test\nalso-bad.test\u2029x.test\n"
    entries, issues = parse_entries(text, kind="domains", where="f", category="c")
    assert entries == ["good.test"]
    assert [issue.where for issue in issues] == ["f:2", "f:3"]


def test_category_requires_canonical_entries() -> None:
    with pytest.raises(ValueError, match="not canonical"):
        Category("adult", domains=(".a.test",))
    with pytest.raises(ValueError, match="sorted and unique"):
        Category("adult", domains=("b.test", "a.test"))
    with pytest.raises(ValueError, match="category name"):
        Category("Adult")
    with pytest.raises(ValueError, match="category name"):
        Category.build("adult\ninclude")
    built = Category.build("adult", domains=["B.test", ".a.test", "b.test"], urls=["a.test/x"])
    assert built.domains == ("a.test", "b.test")
    assert len(built) == 3


# ------------------------------------------------------------------------------------------------
# Blacklist directories
# ------------------------------------------------------------------------------------------------


def test_sample_catalogue() -> None:
    catalogue = load_blacklist_directory(SAMPLE)
    assert catalogue.names() == ("adult", "gambling", "malware", "phishing", "social-networks")
    assert "xn--glcksspiel-beb.test" in catalogue["gambling"].domains
    assert "lottery-online.test" in catalogue["gambling"].domains
    assert "late-night-chat.example" in catalogue["adult"].domains
    assert catalogue["malware"].urls == (
        "file-share.test/downloads/invoice.exe",
        "file-share.test/downloads/payload.zip",
    )
    assert catalogue["phishing"].description.startswith("Pages that impersonate")
    # Never a real site: every host is under a reserved name or a documentation address.
    for category in catalogue.values():
        hosts = [*category.domains, *(u.split("/")[0] for u in category.urls)]
        for host in hosts:
            assert host.endswith((".test", ".example")) or host.startswith("192.0.2."), host
    _, issues = read_blacklist_directory(SAMPLE)
    assert issues == ()


def test_sample_category_names_are_valid_in_the_api() -> None:
    from swg_operator.api.types import CATEGORY_PATTERN

    for name in load_blacklist_directory(SAMPLE).names():
        assert re.fullmatch(CATEGORY_PATTERN, name)


def test_invalid_lines_are_reported_with_file_and_line(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "adult/domains": "# comment\n\nok.test\r\n  spaced.test \t\nbad domain.test\n#x\n",
            "adult/urls": "ok.test/a\nok.test/b c\n",
            "gambling/domains": b"fine.test\n\xff\xfe.test\nalso-fine.test\n",
        },
    )
    with pytest.raises(CatalogueError) as raised:
        load_blacklist_directory(tmp_path)
    wheres = [issue.where for issue in raised.value.issues]
    assert wheres == [
        f"{tmp_path}/adult/domains:5",
        f"{tmp_path}/adult/urls:2",
        f"{tmp_path}/gambling/domains:2",
    ]
    assert "whitespace" in raised.value.issues[0].message
    assert "UTF-8" in raised.value.issues[2].message
    assert f"{tmp_path}/adult/domains:5: 'bad domain.test'" in str(raised.value)
    assert {issue.category for issue in raised.value.issues} == {"adult", "gambling"}

    # Skipping keeps every valid line and leaves the invalid ones out.
    catalogue = load_blacklist_directory(tmp_path, skip_invalid=True)
    assert catalogue["adult"].domains == ("ok.test", "spaced.test")
    assert catalogue["adult"].urls == ("ok.test/a",)
    assert catalogue["gambling"].domains == ("also-fine.test", "fine.test")


def test_directory_layout_rules(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "README": "not a category\n",
            ".git/domains": "hidden.test\n",
            "Bad Name/domains": "x.test\n",
            "empty/usage": "black\n",
            "social_networks/domains": "friends.test\n",
            "social_networks/usage": "black\n",
            "social_networks/expressions": "(porn|sex)\n",
            "urls-only/urls": "a.test/x\n",
        },
    )
    catalogue, issues = read_blacklist_directory(tmp_path)
    assert catalogue.names() == ("social_networks", "urls-only")
    found = {(Path(issue.where).name, issue.severity) for issue in issues}
    assert found == {("Bad Name", "error"), ("empty", "warning"), ("expressions", "warning")}
    with pytest.raises(CatalogueError, match="directory name"):
        load_blacklist_directory(tmp_path)
    with pytest.raises(CatalogueError, match="is not a directory"):
        read_blacklist_directory(tmp_path / "README")


# ------------------------------------------------------------------------------------------------
# The command
# ------------------------------------------------------------------------------------------------


def test_import_prints_configmaps(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["catalogue", "import", str(SAMPLE), "-n", "platform"]) == 0
    documents = list(yaml.safe_load_all(capsys.readouterr().out))
    assert {d["metadata"]["namespace"] for d in documents} == {"platform"}
    assert catalogue_from_configmaps(documents) == load_blacklist_directory(SAMPLE)
    assert cli.main(["catalogue", "import", str(SAMPLE), "-o", "json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["kind"] == "List"
    assert len(listed["items"]) == 5


def test_import_refuses_invalid_lines_unless_told(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _write(tmp_path, {"adult/domains": "ok.test\nnot ok.test\n"})
    assert cli.main(["catalogue", "import", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"{tmp_path}/adult/domains:2" in captured.err
    assert cli.main(["catalogue", "import", str(tmp_path), "--skip-invalid"]) == 0
    captured = capsys.readouterr()
    assert f"{tmp_path}/adult/domains:2" in captured.err
    (document,) = yaml.safe_load_all(captured.out)
    assert document["data"]["domains"] == "ok.test\n"


def test_check_directory_and_configmap_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["catalogue", "check", str(SAMPLE)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"gambling\s+5\s+0\s+Online casinos", out)

    listed = tmp_path / "listed.yaml"
    objects = catalogue_to_configmaps(load_blacklist_directory(SAMPLE), namespace="ns")
    listed.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": objects}))
    assert cli.main(["catalogue", "check", str(listed)]) == 0
    assert read_configmap_file(listed)[0] == load_blacklist_directory(SAMPLE)

    objects[0]["data"]["domains"] += "bad entry.test\n"
    listed.write_text(configmaps_yaml(objects))
    assert cli.main(["catalogue", "check", str(listed)]) == 1
    assert "ConfigMap ns/url-category-adult-0 data.domains:5" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------
# Purity
# ------------------------------------------------------------------------------------------------


def test_catalogue_package_is_pure() -> None:
    package = Path(catalogue_module.__file__).parent
    for path in sorted(package.glob("*.py")):
        source = path.read_text()
        imported: set[str] = set()
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Import):
                imported.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module)
        allowed = {
            "__future__",
            "hashlib",
            "ipaddress",
            "re",
            "unicodedata",
            "collections",
            "collections.abc",
            "dataclasses",
            "typing",
            "swg_operator.api.types",
        }
        ours = {name for name in imported if name.startswith("swg_operator.catalogue.")}
        assert imported - ours <= allowed, (path.name, imported - ours - allowed)
        assert "open(" not in source, path.name


# ------------------------------------------------------------------------------------------------
# One domain grammar and one rule with the API
# ------------------------------------------------------------------------------------------------

_API_DOMAIN = TypeAdapter(Domain)


@settings(max_examples=300)
@given(st.one_of(st.from_regex(DOMAIN_PATTERN, fullmatch=True), st.text(max_size=40)))
def test_catalogue_and_api_accept_the_same_domains(text: str) -> None:
    try:
        entry = parse_domain(text)
    except ValueError:
        entry = None
    try:
        api_value = _API_DOMAIN.validate_python(text)
    except ValidationError:
        api_value = None
    if api_value is not None:
        # Every domain the API admits is a catalogue entry naming the same domain.
        assert entry == domain_name(api_value)
    if entry is not None and not entry[0].isdigit():
        # A catalogue entry is an API domain, with or without the leading dot.
        assert _API_DOMAIN.validate_python(entry) == entry
        assert domain_name(_API_DOMAIN.validate_python(f".{entry}")) == entry


@pytest.mark.parametrize("text", ["my_host.example.test", "_dmarc.example.test"])
def test_underscore_labels_are_domains_in_the_api_and_the_catalogue(text: str) -> None:
    assert parse_domain(text) == text
    assert _API_DOMAIN.validate_python(text) == text


@pytest.mark.parametrize("text", ["..example.test", "*..example.test", "example.test..", "a.b-"])
def test_malformed_dots_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="is not a domain name"):
        parse_domain(text)
