"""The command line: ``python -m devtools.images build|base|digest|index|lock|ctr-import``."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time
from collections.abc import Sequence

from devtools import images, rootfs
from devtools.images.archive import ctr_import
from devtools.images.base import base_manifest, ensure_base
from devtools.images.build import build
from devtools.images.buildah import Buildah, need_buildah
from devtools.images.index import read_index
from devtools.images.inputs import NAMES, Layout, cache_root, inputs_digest, progress, specs
from devtools.images.locks import regenerate_locks


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.images", description=(images.__doc__ or "").split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p_build = sub.add_parser("build", help="build the images whose inputs changed")
    p_build.add_argument("names", nargs="*", metavar="NAME", help=", ".join(NAMES))
    p_build.add_argument("--force", action="store_true", help="rebuild even when current")
    p_build.add_argument(
        "--jobs", type=int, default=int(os.environ.get("SWG_IMAGES_JOBS", "2")), help="at once"
    )
    p_build.add_argument("--driver", default=os.environ.get("SWG_BUILDAH_DRIVER", "overlay"))
    p_base = sub.add_parser("base", help="make debian:trixie-slim (debootstrap) if missing")
    p_base.add_argument("--force", action="store_true")
    p_base.add_argument("--driver", default=os.environ.get("SWG_BUILDAH_DRIVER", "overlay"))
    p_digest = sub.add_parser("digest", help="print the inputs digest of each image")
    p_digest.add_argument("names", nargs="*")
    sub.add_parser("index", help="print the index")
    sub.add_parser("lock", help="regenerate the hashed lock files (needs PyPI)")
    p_ctr = sub.add_parser("ctr-import", help="import every archive into containerd")
    p_ctr.add_argument("--address", required=True)
    p_ctr.add_argument("--namespace", default="k8s.io")
    p_ctr.add_argument("--ctr", default="ctr")
    args = parser.parse_args(argv)
    unknown = set(getattr(args, "names", None) or ()) - set(NAMES)
    if unknown:
        parser.error(f"unknown image(s) {sorted(unknown)}: choose from {', '.join(NAMES)}")
    layout = Layout(cache_root())
    if args.command == "build":
        started = time.monotonic()
        try:
            build(
                args.names or NAMES,
                layout=layout,
                force=args.force,
                driver=args.driver,
                jobs=args.jobs,
            )
        except (OSError, RuntimeError, subprocess.CalledProcessError) as error:
            progress(f"failed: {error}")
            return 1
        progress(f"done in {time.monotonic() - started:.1f} s; index: {layout.index}")
        print(layout.index)
    elif args.command == "base":
        need_buildah()
        with rootfs._lock(layout.lock):
            info = ensure_base(Buildah(layout, args.driver), force=args.force)
        print(info["imageId"])
    elif args.command == "digest":
        base = base_manifest(layout) or {}
        base_id = str(base.get("rootfsDigest", "none"))
        for spec in specs(args.names or NAMES):
            print(spec.ref, inputs_digest(spec, base_id=base_id, builder=Buildah.version()))
    elif args.command == "index":
        print(json.dumps(read_index(layout.index).to_json(), indent=2, sort_keys=True))
    elif args.command == "lock":
        regenerate_locks()
    elif args.command == "ctr-import":
        refs = ctr_import(
            read_index(layout.index), address=args.address, namespace=args.namespace, ctr=args.ctr
        )
        print("\n".join(refs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
