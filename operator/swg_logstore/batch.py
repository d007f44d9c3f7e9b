"""The shipper's batch as the store receives it: the JSON body of `POST /ingest`, validated.

A batch is the records of one stream (a raw log file a shipper reads) with the byte offset
where each record's source line ends; `store` uses the offsets for exactly-once ingestion.
Anything malformed refuses the whole batch with a `BatchError` naming the field.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from swg_logstore.records import MalformedLineError, Record, validate

STREAM_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")


class BatchError(ValueError):
    """A batch the store refuses as a whole (the sender has a bug)."""


@dataclass(frozen=True)
class Batch:
    """Records of one stream, each with the offset where its source line ends, and the offset
    the batch reaches (`to`: past its last line, including lines that made no record)."""

    stream: str
    to: int
    records: Sequence[tuple[int, Record]]

    @staticmethod
    def from_json(body: Any) -> Batch:
        if not isinstance(body, dict):
            raise BatchError("a batch is a JSON object")
        stream, to, items = body.get("stream"), body.get("to"), body.get("records", [])
        if not isinstance(stream, str) or not STREAM_ID.match(stream):
            raise BatchError("stream: expected an id of 1-128 [A-Za-z0-9._:-]")
        if not isinstance(to, int) or isinstance(to, bool) or to < 0:
            raise BatchError("to: expected a non-negative integer")
        if not isinstance(items, list):
            raise BatchError("records: expected a list")
        records: list[tuple[int, Record]] = []
        previous = -1
        for item in items:
            if not isinstance(item, dict):
                raise BatchError("records[]: expected objects {off, record}")
            offset, record = item.get("off"), item.get("record")
            if not isinstance(offset, int) or isinstance(offset, bool):
                raise BatchError("records[].off: expected an integer")
            if offset < previous or offset > to:
                raise BatchError("records[].off: offsets must not decrease or pass `to`")
            if not isinstance(record, dict):
                raise BatchError("records[].record: expected an object")
            try:
                records.append((offset, validate(record)))
            except MalformedLineError as err:
                raise BatchError(f"records[].record: {err}") from None
            previous = offset
        return Batch(stream=stream, to=to, records=records)
