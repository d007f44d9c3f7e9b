"""The JSON index of built images (``$SWG_CACHE/images/index.json``) and its entries."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

INDEX_VERSION = 1


@dataclass(frozen=True)
class Entry:
    """One built image in the index."""

    ref: str
    name: str
    archive: str
    image_id: str
    inputs_digest: str
    format: str = "docker-archive"
    built_at: str = ""
    build_seconds: float = 0.0
    revision: str = "unknown"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "archive": self.archive,
            "format": self.format,
            "imageId": self.image_id,
            "inputsDigest": self.inputs_digest,
            "builtAt": self.built_at,
            "buildSeconds": self.build_seconds,
            "revision": self.revision,
        }

    @classmethod
    def from_json(cls, ref: str, data: Mapping[str, Any]) -> Entry:
        return cls(
            ref=ref,
            name=str(data["name"]),
            archive=str(data["archive"]),
            image_id=str(data["imageId"]),
            inputs_digest=str(data["inputsDigest"]),
            format=str(data.get("format", "docker-archive")),
            built_at=str(data.get("builtAt", "")),
            build_seconds=float(data.get("buildSeconds", 0.0)),
            revision=str(data.get("revision", "unknown")),
        )


@dataclass
class Index:
    images: dict[str, Entry] = field(default_factory=dict)
    base: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": INDEX_VERSION,
            "base": self.base,
            "images": {ref: self.images[ref].to_json() for ref in sorted(self.images)},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Index:
        if data.get("version") != INDEX_VERSION:
            return cls()
        images = {ref: Entry.from_json(ref, item) for ref, item in data["images"].items()}
        return cls(images=images, base=dict(data.get("base", {})))


def read_index(path: Path) -> Index:
    """The index at ``path``; an empty one when absent or of another version."""
    try:
        return Index.from_json(json.loads(path.read_text()))
    except FileNotFoundError:
        return Index()


def write_index(path: Path, index: Index) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps(index.to_json(), indent=2, sort_keys=True) + "\n")
    tmp.replace(path)


def is_current(entry: Entry | None, digest: str) -> bool:
    return entry is not None and entry.inputs_digest == digest and Path(entry.archive).is_file()
