"""The project's four images built without a Docker engine: ``make images``.

Debian's ``buildah`` (``--isolation chroot``, storage of its own under the cache) builds
``images/*/Dockerfile`` on a ``debian:trixie-slim`` base that is made here by debootstrap
(Debian 13, minbase, trimmed like the official slim image) and imported into buildah's storage
under that very name, so ``FROM debian:trixie-slim`` resolves locally and nothing is pulled.

Each image is written as a docker-archive tar (what ``ctr -n k8s.io images import`` and
``docker load`` read) named by the digest of its inputs, and recorded in a JSON index::

    $SWG_CACHE/images/index.json            (SWG_CACHE defaults to ~/.cache/swg-operator)
    {"version": 1,
     "base": {"ref": "docker.io/library/debian:trixie-slim", "imageId": "sha256:...", ...},
     "images": {"ghcr.io/swg-operator/proxy:0.1.0":
                   {"name": "proxy", "archive": "/.../images/proxy-<digest>.tar",
                    "format": "docker-archive", "imageId": "sha256:<config digest>",
                    "inputsDigest": "<sha256>", ...}, ...}}

The inputs of an image are its Dockerfile (and ``Dockerfile.dockerignore``), every file its
``COPY``/``ADD`` instructions take from the build context (lock files included), the build
arguments, the base image's content (the digest of its root filesystem tar, which survives a
re-import into a new storage), the builder's version and ``RECIPE_VERSION``. A build whose
inputs digest is already in the index, with its tar present, is skipped: a rebuild of unchanged
inputs costs a second or two.

Usage::

    python -m devtools.images build [NAME...]     # build what changed (--jobs 2), print the index
    python -m devtools.images base [--force]      # (re)make debian:trixie-slim
    python -m devtools.images digest [NAME...]    # the inputs digest of each image
    python -m devtools.images index               # print the index
    python -m devtools.images lock                # regenerate the hashed lock files (PyPI)
    python -m devtools.images ctr-import --address SOCK   # ctr -n k8s.io images import every tar

Modules: `inputs` (paths, build contexts, the inputs digest), `index` (the JSON index),
`buildah` (the builder), `archive` (reading archives, containerd import), `base` (the
debootstrapped base), `build` (building), `locks` (lock files); the command line is `__main__`.
"""

from __future__ import annotations

from devtools.images.archive import (
    archive_config,
    archive_image_id,
    archive_manifest,
    ctr_import,
    unpack,
)
from devtools.images.base import (
    APT_CONFIG,
    BASE_REF,
    BASE_VERSION,
    DPKG_SPEEDUP,
    ENV_PATH,
    SLIM_DPKG_EXCLUDES,
    base_key,
    base_manifest,
    ensure_base,
)
from devtools.images.build import HOST_CA_BUNDLE, build, build_one, revision
from devtools.images.buildah import Buildah, need_buildah
from devtools.images.index import INDEX_VERSION, Entry, Index, is_current, read_index, write_index
from devtools.images.inputs import (
    IMAGES_DIR,
    JUNK_DIRS,
    JUNK_GLOBS,
    NAMES,
    RECIPE_VERSION,
    REGISTRY,
    REPO,
    ImageSpec,
    Layout,
    cache_root,
    context_files,
    context_of,
    copy_sources,
    image_ref,
    inputs_digest,
    instructions,
    package_version,
    progress,
    specs,
)
from devtools.images.locks import LOCKS, PIP_TOOLS, regenerate_locks

__all__ = [
    "APT_CONFIG",
    "BASE_REF",
    "BASE_VERSION",
    "DPKG_SPEEDUP",
    "ENV_PATH",
    "HOST_CA_BUNDLE",
    "IMAGES_DIR",
    "INDEX_VERSION",
    "JUNK_DIRS",
    "JUNK_GLOBS",
    "LOCKS",
    "NAMES",
    "PIP_TOOLS",
    "RECIPE_VERSION",
    "REGISTRY",
    "REPO",
    "SLIM_DPKG_EXCLUDES",
    "Buildah",
    "Entry",
    "ImageSpec",
    "Index",
    "Layout",
    "archive_config",
    "archive_image_id",
    "archive_manifest",
    "base_key",
    "base_manifest",
    "build",
    "build_one",
    "cache_root",
    "context_files",
    "context_of",
    "copy_sources",
    "ctr_import",
    "ensure_base",
    "image_ref",
    "inputs_digest",
    "instructions",
    "is_current",
    "need_buildah",
    "package_version",
    "progress",
    "read_index",
    "regenerate_locks",
    "revision",
    "specs",
    "unpack",
    "write_index",
]
