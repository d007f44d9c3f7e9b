"""The block page (spec.blockPage) in English and Japanese, and the squid.conf lines that pick
one by the browser's Accept-Language.

Squid negotiates a language only for pages under its compiled-in error directory, which the
read-only image cannot hold a tenant's pages in, and squid.conf sets `error_directory` (the
stock pages plus the tenant's). So the choice is made with ACLs: every `http_access deny` line
whose last ACL shows the block page (`deny_info ERR_SWG_BLOCKED <acl>`) gets a twin before it
that also requires `swg_page_<lang>` (the browser's first preferred language is `<lang>`), and
`deny_info ERR_SWG_BLOCKED_<LANG> swg_page_<lang>` shows that language's page; without a match
the original line shows `ERR_SWG_BLOCKED`, in `defaultLanguage`. Squid remembers the last ACL
it evaluated, so the twin's language ACL names the page; its annotation ACLs ran already and
annotate the same values again.

Customer text (title, contact text) is HTML-escaped, and `%` and `@` become character
references, so no Squid `%` code or `@Squid{...}` macro can be written through it. Every
character outside ASCII (the Japanese text included) is written as a character reference, so
the page is printable ASCII like every other config file.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from swg_logstore.formats import NOTE_CATEGORY, NOTE_LIST, NOTE_POLICY, SQUID_REQUEST_ID_MACRO
from swg_operator.api.block_page import BlockPage, Language
from swg_operator.render.config_text import render_template

BLOCK_PAGE: Final = "ERR_SWG_BLOCKED"
TEMPLATE: Final = "ERR_SWG_BLOCKED"

# What Squid puts in the page (@Squid{...}: a logformat code, expanded with the transaction).
SQUID_MACROS: Final = MappingProxyType(
    {
        "list": f"@Squid{{%{{{NOTE_LIST}}}note}}",
        "category": f"@Squid{{%{{{NOTE_CATEGORY}}}note}}",
        "policy": f"@Squid{{%{{{NOTE_POLICY}}}note}}",
        # The raw request id, as the access log's "rid" (records carry its digest): one
        # @Squid{} per logformat code, the separators as text.
        "request_id": re.sub(r"(%[^-]+)", r"@Squid{\1}", SQUID_REQUEST_ID_MACRO),
    }
)

TEXT: Final[Mapping[Language, Mapping[str, str]]] = MappingProxyType(
    {
        Language.EN: MappingProxyType(
            {
                "title": "Access blocked",
                "lead": "Access blocked by your organisation's web policy.",
                "url": "URL",
                "rule": "Blocked by",
                "category": "Category",
                "policy": "Policy",
                "request_id": "Request ID",
                "client": "Client",
                "time": "Time",
                "gateway": "Gateway",
                "service": "service",
                "contact": "Contact",
                "support": "If you need this page for your work, contact your administrator "
                "and give them the request ID above.",
            }
        ),
        Language.JA: MappingProxyType(
            {
                "title": "アクセスがブロックされました",
                "lead": "このページへのアクセスは、組織のウェブ利用ポリシーにより"
                "ブロックされました。",
                "url": "URL",
                "rule": "ブロックの理由",
                "category": "カテゴリ",
                "policy": "ポリシー",
                "request_id": "リクエスト ID",
                "client": "クライアント",
                "time": "日時",
                "gateway": "ゲートウェイ",
                "service": "サービス",
                "contact": "お問い合わせ先",
                "support": "業務でこのページが必要な場合は、上記のリクエスト ID を添えて管理者に"
                "お問い合わせください。",
            }
        ),
    }
)


def page_name(language: Language) -> str:
    """The error page of one language (`ERR_SWG_BLOCKED_JA`)."""
    return f"{BLOCK_PAGE}_{language.value.upper()}"


def language_acl(language: Language) -> str:
    return f"swg_page_{language.value}"


def customer_html(text: str) -> str:
    """Customer text as HTML that Squid copies as it is: escaped (`& < > " '`), `%` and `@`
    as character references (no Squid `%` code, no `@Squid{...}` macro), line breaks as
    `<br>`."""
    escaped = html.escape(text, quote=True).replace("%", "&#37;").replace("@", "&#64;")
    return "<br>\n".join(escaped.splitlines())


def page(block_page: BlockPage, language: Language, *, service_code: str) -> str:
    """The block page's HTML template in `language`."""
    text = TEXT[language]
    title = block_page.title if block_page.title is not None else text["title"]
    rendered = render_template(
        TEMPLATE,
        language=language.value,
        text=text,
        title=customer_html(title),
        contact=customer_html(block_page.contact_text) if block_page.contact_text else "",
        squid=SQUID_MACROS,
        service_code=service_code,
    )
    # Printable ASCII, as every config file: other characters as character references.
    return rendered.encode("ascii", "xmlcharrefreplace").decode("ascii")


def block_page_files(block_page: BlockPage, *, service_code: str) -> dict[str, str]:
    """`ERR_SWG_BLOCKED` (the default language) and `ERR_SWG_BLOCKED_<LANG>` of each other."""
    files = {BLOCK_PAGE: page(block_page, block_page.default_language, service_code=service_code)}
    for language in Language:
        if language is not block_page.default_language:
            files[page_name(language)] = page(block_page, language, service_code=service_code)
    return files


def first_language_regex(language: Language) -> str:
    """A POSIX extended regex (Squid matches it case-insensitively) for an Accept-Language
    value whose first language tag is `language` or one of its regional forms (`ja`, `ja-JP`,
    `en-GB;q=0.9`). Browsers list languages in order of preference."""
    return rf"^[[:space:]]*{language.value}([-_][[:alnum:]]+)*[[:space:]]*(;|,|$)"


_DENY_INFO = re.compile(rf"^deny_info {BLOCK_PAGE}((?: [A-Za-z0-9_]+)+)$", re.M)
_HTTP_ACCESS_DENY = re.compile(r"^http_access deny (?:.* )?([A-Za-z0-9_]+)$")


def localise(squid_conf: str, block_page: BlockPage) -> str:
    """squid.conf with the language ACLs, the twin of every block-page denial for each
    language but the default, and their deny_info lines (see the module docstring)."""
    shows_page = {acl for match in _DENY_INFO.finditer(squid_conf) for acl in match[1].split()}
    others = [lang for lang in Language if lang is not block_page.default_language]
    acls = [
        f"acl {language_acl(lang)} req_header Accept-Language -i {first_language_regex(lang)}"
        for lang in others
    ]
    out: list[str] = []
    placed = described = False
    for line in squid_conf.splitlines():
        if line.startswith("http_access ") and not placed:
            out += [
                "# spec.blockPage: the block page in the browser's first preferred language "
                "(render.block_page).",
                *acls,
            ]
            placed = True
        match = _HTTP_ACCESS_DENY.match(line)
        if match and match[1] in shows_page:
            out += [f"{line} {language_acl(lang)}" for lang in others]
        out.append(line)
        if _DENY_INFO.match(line) and not described:
            out += [f"deny_info {page_name(lang)} {language_acl(lang)}" for lang in others]
            described = True
    return "\n".join(out) + "\n"
