"""Fixtures of the data-plane tier: Squid, c-icap and clamd from the trixie rootfs, driven with
real traffic, all inside loopback-only network namespaces.

Public API:

``dataplane_rootfs`` (session) -> ``pathlib.Path``
    The trixie root filesystem with the images' packages (``devtools/rootfs.py``), built on
    first use (about a minute) and cached by the hash of ``images/*/packages.txt``. Needs root.

``dataplane_payloads`` (session) -> ``dict[str, Payload]``
    The origin's files (``e2e/dataplane/payloads.py``): ``hello.txt``, ``clean-1KiB.bin``,
    ``clean-5MiB.bin``, ``eicar.com``, ``eicar.zip``, ``eicar-embedded-1.5MiB.bin``, each with
    ``path``, ``size``, ``sha256``, ``infected``. The origin serves them at ``/files/<name>``.

``start_dataplane(conf_dir, *, label="stack", names=DEFAULT_TEST_NAMES, extra_hosts=None,
daemons=("clamd", "c-icap", "squid"), extra_conf=()) -> DataplaneStack`` (session factory)
    Copies ``conf_dir`` (a directory of rendered configuration files: squid.conf, list files,
    ERR_* pages, c-icap.conf, virus_scan.conf, clamd_mod.conf, clamd.conf, signature files) and
    starts a stack from it in a namespace of its own: the configuration is mounted at
    ``/etc/swg/conf``, state at ``/var/lib/swg``, a fresh inspection CA at ``/etc/swg/tls``
    (tls.crt, tls.key); ``names`` resolve to the origin (127.0.0.2) via ``/etc/hosts``, the
    Service names ``antivirus`` and ``logstore`` to 127.0.0.1, ``extra_hosts`` as given;
    ``extra_conf`` files are copied into the configuration directory too; ``resolv_search``
    gives the daemons' resolv.conf a pod's search list (and ndots 5). Every
    stack is stopped at the end of the session; ``stack.close()`` stops one earlier.
    On the stack: ``request(url, method=, upload=, cacert=, insecure=, source=, headers=,
    timeout=)`` (curl through Squid), ``direct(url, ...)`` (curl to the origin),
    ``origin.uploads()``, ``origin.requests()``, ``pki.inspection_ca_cert``,
    ``pki.origin_ca_cert``, ``stop_daemon(name)``, ``start_daemon(name)``,
    ``json_log(path)``, ``read_log(pod, path)``, ``wait_for_log(pod, path, regex)``.

``render_tenant(tenant_yaml, *, settings=TENANT_SETTINGS, catalogue=TENANT_CATALOGUE,
platform_signatures=None) -> Path`` (session factory)
    Runs ``swg-operator render`` on a SecureWebGateway file and returns its ``config/``
    directory: exactly the files the operator would put in the tenant's ConfigMaps (its
    ``manifests/`` directory is beside it). Pass it to ``start_dataplane`` with
    ``extra_conf=TENANT_SIGNATURES`` (the signature ConfigMaps the anti-virus pod projects
    beside them: ``platform-eicar.ndb`` as the platform's ``eicar.ndb`` is projected,
    ``tenant-custom.ndb`` from the tenant's own). ``platform_signatures`` is a directory of the
    platform's signature files, for settings with ``antivirus.signatureSource: configMap``.

``trial_dataplane`` (session) -> ``DataplaneStack``
    A stack from ``testdata/trial`` (the configuration the data-plane trial proved), which the
    harness tests use to show that the harness itself is sound.

Mark tests ``pytest.mark.dataplane``.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Protocol

import pytest
from devtools import rootfs

from e2e.dataplane import netns
from e2e.dataplane.payloads import Payload, write_payloads
from e2e.dataplane.stack import DEFAULT_TEST_NAMES, DataplaneStack

TESTDATA = Path(__file__).parent / "testdata"
TENANT_DATA = TESTDATA / "tenant"
TENANT_SETTINGS = TENANT_DATA / "settings.yaml"
TENANT_CATALOGUE = TENANT_DATA / "catalogue"
TENANT_SIGNATURES = tuple(sorted((TENANT_DATA / "signatures").iterdir()))


class StartDataplane(Protocol):
    def __call__(
        self,
        conf_dir: Path,
        *,
        label: str = ...,
        names: Iterable[str] = ...,
        extra_hosts: Mapping[str, str] | None = ...,
        daemons: Sequence[str] = ...,
        extra_conf: Iterable[Path] = ...,
        resolv_search: Sequence[str] = ...,
    ) -> DataplaneStack: ...


class RenderTenant(Protocol):
    def __call__(
        self,
        tenant_yaml: Path,
        *,
        settings: Path = ...,
        catalogue: Path = ...,
        platform_signatures: Path | None = ...,
    ) -> Path: ...


@pytest.fixture(scope="session")
def dataplane_rootfs() -> Path:
    if os.geteuid() != 0:
        pytest.skip("the data-plane tier needs root (network namespaces, chroot, mounts)")
    for tool in ("ip", "nsenter", "unshare", "chroot", "curl", "openssl"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is missing: run `make deps`")
    return rootfs.build().root


@pytest.fixture(scope="session")
def dataplane_payloads(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Payload]:
    return write_payloads(tmp_path_factory.mktemp("payloads"))


@pytest.fixture(scope="session")
def start_dataplane(
    dataplane_rootfs: Path,
    dataplane_payloads: dict[str, Payload],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[StartDataplane]:
    netns.cleanup_stale()
    stacks: list[DataplaneStack] = []

    def close_all() -> None:
        while stacks:
            stacks.pop().close()

    atexit.register(close_all)  # also when the session is interrupted

    def start(
        conf_dir: Path,
        *,
        label: str = "stack",
        names: Iterable[str] = DEFAULT_TEST_NAMES,
        extra_hosts: Mapping[str, str] | None = None,
        daemons: Sequence[str] = ("clamd", "c-icap", "squid"),
        extra_conf: Iterable[Path] = (),
        resolv_search: Sequence[str] = (),
    ) -> DataplaneStack:
        stack = DataplaneStack(
            rootfs=dataplane_rootfs,
            conf_dir=conf_dir,
            workdir=tmp_path_factory.mktemp(f"dp-{label}"),
            payloads=dataplane_payloads,
            label=label,
            names=names,
            extra_hosts=extra_hosts,
            daemons=daemons,
            extra_conf=extra_conf,
            resolv_search=resolv_search,
        )
        stacks.append(stack)
        return stack.start()

    try:
        yield start
    finally:
        close_all()
        atexit.unregister(close_all)


@pytest.fixture(scope="session")
def render_tenant(tmp_path_factory: pytest.TempPathFactory) -> RenderTenant:
    def render(
        tenant_yaml: Path,
        *,
        settings: Path = TENANT_SETTINGS,
        catalogue: Path = TENANT_CATALOGUE,
        platform_signatures: Path | None = None,
    ) -> Path:
        out = tmp_path_factory.mktemp(f"render-{tenant_yaml.stem}")
        argv = [sys.executable, "-m", "swg_operator.cli", "render", str(tenant_yaml)]
        argv += ["--output-dir", str(out), "--overwrite", "--settings", str(settings)]
        argv += ["--catalogue", str(catalogue)]
        if platform_signatures is not None:
            argv += ["--platform-signatures", str(platform_signatures)]
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            pytest.fail(f"swg-operator render {tenant_yaml.name} failed:\n{proc.stderr}")
        return out / "config"

    return render


@pytest.fixture(scope="session")
def trial_dataplane(start_dataplane: StartDataplane) -> DataplaneStack:
    return start_dataplane(TESTDATA / "trial", label="trial")
