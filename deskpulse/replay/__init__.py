"""Replay of history: canonical JSON lines, and exports of other tools through mapping files.

docs/replay.md has the usage, the mapping language and the ServiceNow mapping field by field.
`mapping` loads and checks mapping files, `transform` turns records into events (stateful per
key), `sources` reads exports, `run` paces and sends, `cli` is `deskpulse replay`.
"""

from deskpulse.replay.errors import MappingError, RecordError, ReplayError
from deskpulse.replay.mapping import Mapping, available_mappings, compile_mapping, load_mapping
from deskpulse.replay.run import ReplayOptions, ReplayReport, format_report, replay
from deskpulse.replay.sources import open_source
from deskpulse.replay.transform import MapResult, Transformer, map_records

__all__ = [
    "MapResult",
    "Mapping",
    "MappingError",
    "RecordError",
    "ReplayError",
    "ReplayOptions",
    "ReplayReport",
    "Transformer",
    "available_mappings",
    "compile_mapping",
    "format_report",
    "load_mapping",
    "map_records",
    "open_source",
    "replay",
]
