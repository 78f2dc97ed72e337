"""Reads an offline W&B run file (``run-<id>.wandb``) back into wandb's protobuf records.

wandb >= 0.19 writes these from its Go core and no longer ships the Python reader; the
format is the LevelDB log format (what ``wandb sync`` reads): a 7-byte file header
``:W&B`` + magic + version, then 32 KiB blocks of chunks, each with a 7-byte header (CRC32C,
length, type: 1 full, 2 first, 3 middle, 4 last) holding one serialized ``Record``.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from wandb.proto import wandb_internal_pb2

BLOCK = 32768
HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def read_records(path: Path) -> Iterator[wandb_internal_pb2.Record]:
    data = Path(path).read_bytes()
    if data[:4] != b":W&B":
        raise ValueError(f"{path}: not a W&B run file")
    pos, pending = HEADER, b""
    while pos + HEADER <= len(data):
        left_in_block = BLOCK - pos % BLOCK
        if left_in_block < HEADER:  # the writer pads the end of a block with zeros
            pos += left_in_block
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + HEADER])
        if kind == 0 and length == 0:
            pos += left_in_block
            continue
        chunk = data[pos + HEADER : pos + HEADER + length]
        pos += HEADER + length
        if kind == FULL:
            pending = chunk
        elif kind == FIRST:
            pending = chunk
            continue
        elif kind == MIDDLE:
            pending += chunk
            continue
        else:
            pending += chunk
        record = wandb_internal_pb2.Record()
        record.ParseFromString(pending)
        pending = b""
        yield record


@dataclass
class OfflineRun:
    """What a test needs from an offline run: identity, config, history rows, metric defs."""

    run_id: str = ""
    name: str = ""
    group: str = ""
    tags: list[str] = field(default_factory=list)
    config: dict = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)
    summaries: dict[str, str] = field(default_factory=dict)  # metric -> summary kind


def read_run(path: Path) -> OfflineRun:
    run = OfflineRun()
    for record in read_records(path):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run.run_id, run.name = record.run.run_id, record.run.display_name
            run.group, run.tags = record.run.run_group, list(record.run.tags)
            _update_config(run.config, record.run.config.update)
        elif kind == "config":
            _update_config(run.config, record.config.update)
        elif kind == "history":
            row = {}
            for item in record.history.item:
                key = item.key or "/".join(item.nested_key)
                row[key] = json.loads(item.value_json)
            run.history.append(row)
        elif kind == "metric" and record.metric.name:
            summary = record.metric.summary
            for how in ("max", "min", "last", "mean", "best"):
                if getattr(summary, how, False):
                    run.summaries[record.metric.name] = how
    return run


def _update_config(config: dict, items) -> None:
    for item in items:
        key = item.key or "/".join(item.nested_key)
        config[key] = json.loads(item.value_json)
