"""`spec.contentControls` with real Squid, c-icap and clamd (testdata/tenant/tenant-content.yaml).

* File types by content: the tenant refuses executables, PDFs and a type of its own (bytes
  `SWG!` at offset 4). A runnable ELF, a PE32 executable, the ELF named readme.txt, the ELF
  inside a zip, a PDF and a custom-typed file are refused, over HTTP and decrypted HTTPS, with a
  `SWG.FileType.*` name logged as verdict `file-type`; text, and a zip of text, pass. An
  encrypted zip is refused whatever it holds (it cannot be scanned).
* SafeSearch: a Google, Bing or DuckDuckGo search without the engine's strict parameter is
  redirected to the same URL with it; one that sets it to another value is refused; YouTube
  requests carry `YouTube-Restrict: Strict`, whatever the client sent.
"""

from __future__ import annotations

import json

import pytest

from e2e.dataplane.conftest import TENANT_DATA, TENANT_SIGNATURES, RenderTenant, StartDataplane
from e2e.dataplane.stack import DEFAULT_TEST_NAMES, DataplaneStack
from swg_logstore.records import Record, squid_access_records

pytestmark = pytest.mark.dataplane

SEARCH_NAMES = ("www.google.com", "www.google.co.jp", "www.bing.com", "duckduckgo.com")
YOUTUBE = "www.youtube.com"


@pytest.fixture(scope="module")
def content(start_dataplane: StartDataplane, render_tenant: RenderTenant) -> DataplaneStack:
    config = render_tenant(TENANT_DATA / "tenant-content.yaml")
    return start_dataplane(
        config,
        label="content",
        names=(*DEFAULT_TEST_NAMES, *SEARCH_NAMES, YOUTUBE),
        extra_conf=TENANT_SIGNATURES,
    )


def _access(stack: DataplaneStack, pattern: str) -> Record:
    line = json.dumps(stack.wait_for_access_log(pattern))
    return squid_access_records(line)[0]


REFUSED = {
    "tool.elf": "SWG.FileType.Executable.ELF.UNOFFICIAL",
    "setup.exe": "SWG.FileType.Executable.PE.UNOFFICIAL",
    "readme.txt": "SWG.FileType.Executable.ELF.UNOFFICIAL",
    "elf-inside.zip": "SWG.FileType.Executable.ELF.UNOFFICIAL",
    "report.pdf": "SWG.FileType.PDF.UNOFFICIAL",
    "custom.dat": "SWG.FileType.Custom.swg-test.UNOFFICIAL",
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_file_types_are_refused_by_content(content: DataplaneStack, name: str) -> None:
    response = content.request(f"http://clean.test/files/{name}")
    assert response.status == 403, (name, response.status)
    assert REFUSED[name] in response.text
    record = _access(content, rf"clean\.test/files/{name.replace('.', '[.]')}")
    assert (record["av"], record["avSignature"]) == ("file-type", REFUSED[name])


def test_file_types_are_refused_in_decrypted_https(content: DataplaneStack) -> None:
    response = content.request(
        "https://clean.test/files/setup.exe", cacert=content.pki.inspection_ca_cert
    )
    assert response.status == 403
    assert REFUSED["setup.exe"] in response.text


@pytest.mark.parametrize("name", ["plain.txt", "text-inside.zip", "hello.txt"])
def test_other_types_pass(content: DataplaneStack, name: str) -> None:
    response = content.request(f"http://clean.test/files/{name}")
    assert response.status == 200, name
    assert response.body == content.payloads[name].path.read_bytes()


def test_an_encrypted_archive_is_refused_whatever_it_holds(content: DataplaneStack) -> None:
    response = content.request("http://clean.test/files/text-encrypted.zip")
    assert response.status == 403
    assert "Heuristics.Encrypted.Zip" in response.text


@pytest.mark.parametrize(
    ("url", "param"),
    [
        ("https://www.google.com/search?q=test", "safe=active"),
        ("https://www.google.co.jp/search?q=test&hl=ja", "safe=active"),
        ("https://www.bing.com/search?q=test", "adlt=strict"),
        ("https://duckduckgo.com/?q=test", "kp=1"),
    ],
)
def test_searches_are_redirected_to_safe_search(
    content: DataplaneStack, url: str, param: str
) -> None:
    cacert = content.pki.inspection_ca_cert
    first = content.request(url, cacert=cacert)
    assert first.status == 302, (url, first.status)
    location = first.headers.get("location")
    assert location == f"{url}&{param}", location
    second = content.request(location, cacert=cacert)
    assert second.status == 200
    host = url.split("/")[2]
    path = location.split(host, 1)[1]
    assert ("GET", host, path) in content.origin.requests()  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "url",
    [
        "https://www.google.com/search?q=test&safe=off",
        "https://www.google.com/search?q=test&safe=active&safe=off",
        "https://www.google.com/search?safe=activex&q=test",
        "https://www.bing.com/search?q=test&adlt=off",
        "https://duckduckgo.com/?q=test&kp=-2",
    ],
)
def test_a_search_that_turns_safe_search_off_is_refused(content: DataplaneStack, url: str) -> None:
    response = content.request(url, cacert=content.pki.inspection_ca_cert)
    assert response.status == 403, (url, response.status)


def test_youtube_requests_carry_restricted_mode(content: DataplaneStack) -> None:
    response = content.request(
        f"https://{YOUTUBE}/header-list",
        cacert=content.pki.inspection_ca_cert,
        headers={"YouTube-Restrict": "Off"},
    )
    assert response.status == 200
    values = [v for k, v in json.loads(response.body) if k.lower() == "youtube-restrict"]
    assert values == ["Strict"]
    # Other sites get no such header.
    other = content.request("https://clean.test/header-list", cacert=content.pki.inspection_ca_cert)
    assert "youtube-restrict" not in {k.lower() for k, _ in json.loads(other.body)}
