"""spec.blockPage with real Squid: the block page in Japanese or English by the browser's
Accept-Language (the tenant's default without one, or for another language), naming the list and
category that blocked and the request id of the access log record, with the customer's title
and contact text as text (HTML and Squid % codes neutralised).

Runs what `swg-operator render` produces for testdata/tenant/tenant-block-page.yaml.
"""

from __future__ import annotations

import html
import re

import pytest

from e2e.dataplane import client
from e2e.dataplane.conftest import TENANT_DATA, RenderTenant, StartDataplane
from e2e.dataplane.stack import DataplaneStack

pytestmark = pytest.mark.dataplane

TENANT = TENANT_DATA / "tenant-block-page.yaml"
SETTINGS = TENANT_DATA / "settings-exposure.yaml"
TITLE = "Example <Corp> 100% @Squid{%U}"
CONTACT_LINES = (
    "情報システム部 ヘルプデスク (内線 1234)",
    '<script>alert(1)</script> %U %% @Squid{%tS} & "quotes"',
)


@pytest.fixture(scope="module")
def stack(start_dataplane: StartDataplane, render_tenant: RenderTenant) -> DataplaneStack:
    return start_dataplane(
        render_tenant(TENANT, settings=SETTINGS), label="block-page", daemons=("squid",)
    )


def _blocked(stack: DataplaneStack, url: str, language: str | None) -> client.Response:
    headers = {"Accept-Language": language} if language is not None else {}
    response = stack.request(url, headers=headers)
    assert response.status == 403, (response.status, response.error, response.text[:300])
    return response


def _field(page: str, name: str) -> str:
    match = re.search(rf'<code id="{name}">([^<]*)</code>', page)
    assert match, page
    return match.group(1)


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("ja", "ja"),
        ("ja-JP,ja;q=0.9,en;q=0.8", "ja"),
        ("en-US,en;q=0.9,ja;q=0.8", "en"),
        ("EN", "en"),
        (None, "ja"),  # no header: the tenant's default
        ("fr-FR,fr;q=0.9", "ja"),  # neither language: the default
    ],
)
def test_the_page_language_follows_accept_language(
    stack: DataplaneStack, language: str | None, expected: str
) -> None:
    page = html.unescape(_blocked(stack, "http://casino.test/files/hello.txt", language).text)
    assert f'<html lang="{expected}">' in page
    assert ("カテゴリ" in page) == (expected == "ja")
    assert ("Category" in page) == (expected == "en")


@pytest.mark.parametrize("language", ["ja", "en"])
def test_the_page_names_the_list_category_and_request_id(
    stack: DataplaneStack, language: str
) -> None:
    url = f"http://www.casino.test/page-{language}.html"  # Squid logs no query
    page = _blocked(stack, url, language).text
    assert "<b>category</b>" in page
    assert "<b>gambling</b>" in page
    request_id = _field(page, "request-id")
    entry = stack.wait_for_access_log(re.escape(f'"url":"{url}"'))
    assert entry["rid"] == request_id
    assert entry["decision"] == "block"
    assert entry["category"] == "gambling"
    denied = _blocked(stack, "http://denied.test/files/hello.txt", language).text
    assert "<b>deny-domain</b>" in denied, denied


def test_customer_text_is_shown_as_text(stack: DataplaneStack) -> None:
    for language in ("ja", "en"):
        page = _blocked(stack, "http://casino.test/files/hello.txt", language).text
        assert "<script>" not in page
        shown = html.unescape(re.sub(r"<br>\n?", "\n", _contact(page)))
        assert shown == "\n".join(CONTACT_LINES), shown
        assert f"<h1>{html.escape(TITLE).replace('%', '&#37;').replace('@', '&#64;')}</h1>" in page
        # Squid expanded none of the customer's % codes or @Squid{} macros: the URL is absent.
        assert page.count("casino.test/files/hello.txt") == 1, page


def _contact(page: str) -> str:
    match = re.search(r'<p id="contact">(.*?)</p>', page, re.S)
    assert match, page
    return match.group(1)
