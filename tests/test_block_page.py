"""The block page (render.block_page, api.block_page): a page per language with every
customer string HTML-escaped and stripped of Squid % codes and @Squid{} macros, the language
chosen by ACL twins of every denial that shows the page, and bad input refused naming the
field."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest

from render_support import minimal_spec, render
from swg_operator.api import SpecError, parse_spec
from swg_operator.api.block_page import BlockPage, Language
from swg_operator.posix_regex import posix_ere_error
from swg_operator.render.block_page import (
    BLOCK_PAGE,
    block_page_files,
    customer_html,
    first_language_regex,
    localise,
    page_name,
)

NASTY = (
    "<script>alert(\"x\")</script> & 'q' %U %% %{list}note @Squid{%tS} @Squid{%>la} "
    "{{ jinja }} {% raw %}"
)


def _page(block_page: dict[str, Any], language: Language) -> str:
    files = block_page_files(BlockPage.model_validate(block_page), service_code="SWG-1")
    default = BlockPage.model_validate(block_page).default_language
    return files[BLOCK_PAGE if language is default else page_name(language)]


def _customer_part(page: str, start: str, end: str) -> str:
    return page.split(start, 1)[1].split(end, 1)[0]


@pytest.mark.parametrize("language", list(Language))
def test_every_customer_string_is_escaped_and_holds_no_squid_code(language: Language) -> None:
    page = _page({"title": NASTY, "contactText": f"{NASTY}\nline two %T"}, language)
    for part in (
        _customer_part(page, "<title>", "</title>"),
        _customer_part(page, "<h1>", "</h1>"),
        _customer_part(page, '<p id="contact">', "</p>"),
    ):
        assert "<" not in part.replace("<br>", "")
        assert "%" not in part  # no Squid % code, not even %%
        assert "@" not in part  # no @Squid{...} macro
        assert '"' not in part
        assert "'" not in part
    contact = _customer_part(page, '<p id="contact">', "</p>")
    assert html.unescape(contact.replace("<br>\n", "\n")) == f"{NASTY}\nline two %T"
    # The page's own Squid codes are still there, once each.
    assert page.count("%U") == 1
    assert page.count("@Squid{%tS}") == 1


def test_customer_html_neutralises_each_character() -> None:
    assert customer_html("a%b@c<d>&\"'") == "a&#37;b&#64;c&lt;d&gt;&amp;&quot;&#x27;"
    assert customer_html("one\ntwo") == "one<br>\ntwo"


def test_a_page_per_language_the_default_as_err_swg_blocked() -> None:
    files = block_page_files(BlockPage(default_language=Language.JA), service_code="SWG-1")
    assert set(files) == {"ERR_SWG_BLOCKED", "ERR_SWG_BLOCKED_EN"}
    assert '<html lang="ja">' in files["ERR_SWG_BLOCKED"]
    assert '<html lang="en">' in files["ERR_SWG_BLOCKED_EN"]
    assert "アクセスがブロックされました" in html.unescape(files["ERR_SWG_BLOCKED"])
    for page in files.values():
        assert page.isascii()
    english = block_page_files(BlockPage(), service_code="SWG-1")
    assert set(english) == {"ERR_SWG_BLOCKED", "ERR_SWG_BLOCKED_JA"}
    for page in (*files.values(), *english.values()):
        assert "@Squid{%{list}note}" in page
        assert "@Squid{%{category}note}" in page
        assert "@Squid{%tS}-@Squid{%>la}-@Squid{%master_xaction}" in page  # the access log rid


def _python(regex: str) -> re.Pattern[str]:
    """The POSIX ERE as Python reads it (the data-plane tier runs Squid's own regcomp)."""
    python = regex.replace("[[:space:]]", r"\s").replace("[[:alnum:]]", "[A-Za-z0-9]")
    return re.compile(python, re.IGNORECASE)


@pytest.mark.parametrize(
    ("header", "first"),
    [
        ("ja", "ja"),
        ("ja-JP,ja;q=0.9,en-US;q=0.8", "ja"),
        (" JA-jp ; q=1", "ja"),
        ("en-US,en;q=0.9,ja;q=0.8", "en"),
        ("en", "en"),
        ("fr-FR,ja;q=0.5", None),
        ("jav", None),
        ("*", None),
        ("", None),
    ],
)
def test_the_language_acl_matches_the_first_preferred_language(
    header: str, first: str | None
) -> None:
    for language in Language:
        regex = first_language_regex(language)
        if posix_ere_error("x") is None:  # glibc is at hand: Squid's flags compile it
            assert posix_ere_error(regex) is None
        assert bool(_python(regex).search(header)) == (first == language.value), language


def test_every_denial_showing_the_page_gets_a_language_twin() -> None:
    spec = minimal_spec(
        urlFiltering={"blockedCategories": ["gambling"], "deny": {"domains": ["x.example"]}},
        blockPage={"defaultLanguage": "ja"},
    )
    lines = render("t", spec).config_files["squid.conf"].splitlines()
    shows = {
        acl
        for line in lines
        if line.startswith("deny_info ERR_SWG_BLOCKED ")
        for acl in line.split()[2:]
    }
    denials = [
        line for line in lines if line.startswith("http_access deny ") and line.split()[-1] in shows
    ]
    assert len(denials) >= 5  # the guards, the category, the deny list
    for line in denials:
        index = lines.index(line)
        assert lines[index - 1] == f"{line} swg_page_en", line
    assert "deny_info ERR_SWG_BLOCKED_EN swg_page_en" in lines
    acl = next(i for i, line in enumerate(lines) if line.startswith("acl swg_page_en "))
    first_use = next(i for i, line in enumerate(lines) if line.endswith(" swg_page_en"))
    assert acl < first_use
    # Nothing else changed: without the twins and the language lines, the text is the same.
    english_default = render("t", {**spec, "blockPage": {}}).config_files["squid.conf"]
    assert "swg_page_ja" in english_default
    assert "swg_page_en" not in english_default


def test_localise_leaves_other_denials_alone() -> None:
    conf = (
        "acl a src 10.0.0.0/8\n"
        "http_access deny !Safe_ports\n"
        "http_access deny a tagged\n"
        "deny_info ERR_SWG_BLOCKED tagged\n"
    )
    out = localise(conf, BlockPage()).splitlines()
    assert out.count("http_access deny !Safe_ports") == 1
    assert "http_access deny !Safe_ports swg_page_ja" not in out
    assert out.index("http_access deny a tagged swg_page_ja") + 1 == out.index(
        "http_access deny a tagged"
    )


@pytest.mark.parametrize(
    ("block_page", "field"),
    [
        ({"defaultLanguage": "fr"}, "spec.blockPage.defaultLanguage"),
        ({"contactText": "a\nb\nc\nd\ne\nf"}, "spec.blockPage.contactText"),  # six lines
        ({"contactText": "x" * 501}, "spec.blockPage.contactText"),
        ({"contactText": "bell\x07"}, "spec.blockPage.contactText"),
        ({"contactText": "crlf\r\nline"}, "spec.blockPage.contactText"),
        ({"contactText": "bidi \u202e txt"}, "spec.blockPage.contactText"),
        ({"contactText": ""}, "spec.blockPage.contactText"),
        ({"title": "two\nlines"}, "spec.blockPage.title"),
        ({"title": " padded"}, "spec.blockPage.title"),
        ({"title": "t" * 121}, "spec.blockPage.title"),
        ({"language": "en"}, "spec.blockPage.language"),  # unknown field
    ],
)
def test_bad_block_page_input_is_refused_naming_the_field(
    block_page: dict[str, Any], field: str
) -> None:
    with pytest.raises(SpecError) as raised:
        parse_spec(minimal_spec(blockPage=block_page))
    assert field in str(raised.value)


def test_five_lines_of_japanese_contact_text_are_accepted() -> None:
    text = "情報システム部\n内線 1234\nit@example.com\n平日 9:00-18:00\n100% 対応"
    spec = parse_spec(minimal_spec(blockPage={"contactText": text, "defaultLanguage": "ja"}))
    assert spec.block_page.contact_text == text
