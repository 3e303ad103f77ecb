"""Reading exports record by record: CSV, JSON lines, a JSON document, canonical JSON lines.

Readers stream (one record in memory at a time), read gzip when the name ends in .gz, and report
how far into the file they are (`position()`, bytes of the file as stored) for progress bars. A
record that cannot even be read (a line that is not JSON, a CSV row with too many values) comes out
as a RecordError in place of the record, so the caller counts and reports it like any other.
"""

from __future__ import annotations

import csv
import gzip
import io
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import orjson

from deskpulse.replay.errors import RecordError, ReplayError
from deskpulse.replay.values import compile_path

# csv's default field limit (128 KiB) is too small for some exports' free-text columns.
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))

Item = tuple[int, int | None, object]  # (record number from 1, line, record or RecordError)


class Source:
    """One input file; iterate `records()` once."""

    def __init__(self, path: str | Path, limit: int | None = None):
        self.path = Path(path)
        if not self.path.is_file():
            raise ReplayError(f"{self.path}: no such file")
        self.size = self.path.stat().st_size
        self.limit = limit
        self._raw: BinaryIO | None = None

    def _open_binary(self) -> BinaryIO:
        self._raw = open(self.path, "rb")  # noqa: SIM115 - closed by the iterators
        if self.path.suffix == ".gz":
            return gzip.GzipFile(fileobj=self._raw)  # type: ignore[return-value]
        return self._raw

    def position(self) -> int:
        """Bytes of the stored file read so far (approximate: reads are buffered)."""
        try:
            return self._raw.tell() if self._raw is not None else 0
        except (ValueError, OSError):
            return self.size

    def close(self) -> None:
        if self._raw is not None:
            self._raw.close()


def _encoding(name: str) -> str:
    # Exports from Windows tools often start with a byte-order mark; utf-8-sig reads both.
    return "utf-8-sig" if name.replace("_", "-").lower() in ("utf-8", "utf8") else name


class CsvSource(Source):
    def __init__(self, path, *, delimiter=",", encoding="utf-8", limit=None):
        super().__init__(path, limit)
        self.delimiter = delimiter
        self.encoding = _encoding(encoding)
        with self._text() as f:
            try:
                self.header = next(csv.reader(f, delimiter=delimiter))
            except StopIteration:
                self.header = []
            except (csv.Error, UnicodeDecodeError) as e:
                raise ReplayError(f"{self.path}: cannot read the CSV header ({e})") from None
        self.close()

    def _text(self) -> io.TextIOWrapper:
        return io.TextIOWrapper(self._open_binary(), encoding=self.encoding, newline="")

    def records(self) -> Iterator[Item]:
        header = self.header
        width = len(header)
        with self._text() as f:
            reader = csv.reader(f, delimiter=self.delimiter)
            next(reader, None)
            n = 0
            while self.limit is None or n < self.limit:
                try:
                    row = next(reader)
                except StopIteration:
                    return
                except (csv.Error, UnicodeDecodeError) as e:
                    n += 1
                    yield n, reader.line_num, RecordError("row", None, f"cannot be read ({e})")
                    continue
                if not row:
                    continue  # a blank line, as csv.DictReader skips them
                n += 1
                if len(row) == width:
                    yield n, reader.line_num, dict(zip(header, row, strict=True))
                elif len(row) > width:
                    rule = f"has {len(row) - width} more value(s) than the header has columns"
                    yield n, reader.line_num, RecordError("row", row[width:], rule)
                else:  # short rows: the missing columns are absent, as in csv.DictReader
                    yield n, reader.line_num, dict(zip(header, row, strict=False))


class JsonLinesSource(Source):
    """One JSON object per line (blank lines skipped)."""

    def records(self) -> Iterator[Item]:
        n = 0
        with self._open_binary() as f:
            for line_no, line in enumerate(f, 1):
                if self.limit is not None and n >= self.limit:
                    return
                if not line.strip():
                    continue
                n += 1
                try:
                    obj = orjson.loads(line)
                except orjson.JSONDecodeError as e:
                    yield n, line_no, RecordError("line", line[:200], f"is not valid JSON ({e})")
                    continue
                yield n, line_no, obj


class JsonSource(Source):
    """A JSON document: an array of records, or an object holding one at `records` (dotted)."""

    def __init__(self, path, *, records_path: str | None = None, limit=None):
        super().__init__(path, limit)
        self.records_path = records_path

    def records(self) -> Iterator[Item]:
        with self._open_binary() as f:
            try:
                doc = orjson.loads(f.read())
            except orjson.JSONDecodeError as e:
                raise ReplayError(f"{self.path}: not valid JSON ({e})") from None
        items = compile_path(self.records_path)(doc) if self.records_path else doc
        if not isinstance(items, list):
            where = f" at {self.records_path!r}" if self.records_path else ""
            raise ReplayError(f"{self.path}: no list of records{where}")
        for n, obj in enumerate(items, 1):
            if self.limit is not None and n > self.limit:
                return
            yield n, None, obj


class CanonicalSource(Source):
    """Canonical events, one JSON object per line, as `--out` and `deskpulse simulate` write."""

    def lines(self) -> Iterator[tuple[int, bytes]]:
        n = 0
        with self._open_binary() as f:
            for line_no, line in enumerate(f, 1):
                if self.limit is not None and n >= self.limit:
                    return
                if not line.strip():
                    continue
                n += 1
                yield line_no, line.rstrip(b"\r\n")


def open_source(mapping, path: str | Path, limit: int | None = None) -> Source:
    """The reader a mapping's source.format asks for."""
    if mapping.source_format == "csv":
        return CsvSource(path, delimiter=mapping.delimiter, encoding=mapping.encoding, limit=limit)
    if mapping.source_format == "jsonl":
        return JsonLinesSource(path, limit)
    return JsonSource(path, records_path=mapping.records_path, limit=limit)
