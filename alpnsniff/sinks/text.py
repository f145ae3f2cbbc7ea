"""Writers that need no pandas: ndjson and CSV, streaming one row at a time."""

from __future__ import annotations

import csv
import json
from typing import Any, TextIO

from .rows import COLUMNS, WIRE_TEXT_COLUMNS

# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection).
_FORMULA_START = frozenset("=+-@\t\r")


class NdjsonWriter:
    """One JSON object per line, keys in :data:`COLUMNS` order."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        # one encoder for the run: json.dumps with these options builds a new one each call
        self._encode = json.JSONEncoder(ensure_ascii=True, separators=(",", ":")).encode

    def write(self, row: dict[str, Any]) -> None:
        self.out.write(self._encode(row) + "\n")

    def close(self) -> None:
        self.out.flush()


def _defuse(text: str) -> str:
    """Write a leading formula character as ``\\xNN``, like every other escaped octet."""
    if text and text[0] in _FORMULA_START:
        return f"\\x{ord(text[0]):02x}{text[1:]}"
    return text


def csv_cell(column: str, value: Any) -> str:
    """CSV text of one value: lists joined by a space (an escaped ALPN never holds one)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        items = [_defuse(str(v)) if column in WIRE_TEXT_COLUMNS else str(v) for v in value]
        return " ".join(items)
    text = str(value)
    return _defuse(text) if column in WIRE_TEXT_COLUMNS else text


class CsvWriter:
    """RFC 4180 CSV with a header row; wire text made safe for spreadsheets."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.writer = csv.writer(out, lineterminator="\n")
        self.writer.writerow(COLUMNS)

    def write(self, row: dict[str, Any]) -> None:
        self.writer.writerow([csv_cell(c, row[c]) for c in COLUMNS])

    def close(self) -> None:
        self.out.flush()
