"""alpnsniff: which application protocols (ALPN) TLS and QUIC peers negotiate, from the wire.

``alpnsniff.read(paths)`` gives a pandas DataFrame, one row per handshake;
``alpnsniff.load(path)`` gives it back from the Parquet file ``alpnsniff read --format
parquet`` wrote. Importing this package does not import pandas (the CLI's ndjson path never
needs it).
"""

from __future__ import annotations

import io
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from .records import Handshake, Selection

if TYPE_CHECKING:
    import pandas as pd

    from .keys.keylog import KeyLog
    from .pipeline import RunResult

__version__ = "0.1.0"
__all__ = ["Handshake", "Selection", "analyze", "load", "read", "sniff", "stream"]

PathLike = str | os.PathLike[str]
# A capture: a path, "-" (standard input), or a binary file object open for reading.
Capture = PathLike | BinaryIO
Captures = Capture | Iterable[Capture]


def _is_stream(obj: object) -> bool:
    return hasattr(obj, "read") and not isinstance(obj, str | bytes | os.PathLike)


def _inputs(paths: Captures) -> list[Capture]:
    one = isinstance(paths, str | os.PathLike | bytes | bytearray | memoryview)
    out = (
        [cast(Capture, paths)] if one or _is_stream(paths) else list(cast(Iterable[Capture], paths))
    )
    for item in out:
        if isinstance(item, bytes | bytearray | memoryview):
            raise TypeError("a capture's bytes: pass them as io.BytesIO(data), or pass a path")
        if isinstance(item, io.TextIOBase):
            raise TypeError(f"{getattr(item, 'name', '<stream>')}: open the capture in binary mode")
    return out


def _stream_names(inputs: list[Capture]) -> dict[int, str]:
    """The capture name of each stream among the inputs, by position: its ``.name`` if it is
    text, else ``<stream>`` (``<stream 1>``, ``<stream 2>``, … when there are several)."""
    positions = [i for i, item in enumerate(inputs) if _is_stream(item)]
    names = {i: getattr(inputs[i], "name", None) for i in positions}
    nameless = [i for i in positions if not isinstance(names[i], str)]
    for n, i in enumerate(nameless, 1):
        names[i] = "<stream>" if len(nameless) == 1 else f"<stream {n}>"
    return cast(dict[int, str], names)


class _NamedStream:
    """A binary stream under the name the run gives it (its errors say that name)."""

    def __init__(self, stream: BinaryIO, name: str) -> None:
        self._stream = stream
        self.name = name
        if hasattr(stream, "read1"):
            self.read1 = stream.read1

    def read(self, n: int = -1) -> bytes:
        return self._stream.read(n)


def _analyze_stream(stream: BinaryIO, name: str, keylog: KeyLog | None) -> RunResult:
    """One binary stream read to its end, in this process (a stream cannot be re-read by
    parallel workers). The stream is left open: its owner closes it."""
    from .pipeline import analyze_file

    return analyze_file(cast(BinaryIO, _NamedStream(stream, name)), keylog=keylog)


def analyze(
    paths: Captures, *, keylog: PathLike | Iterable[PathLike] | None = None
) -> list[RunResult]:
    """Read captures; one :class:`~alpnsniff.pipeline.RunResult` each (records and counts).

    A capture is a path, ``"-"`` (standard input) or a binary file object open for reading
    (``io.BytesIO``, ``open(p, "rb")``: read from where it stands, in this process, and left
    open); ``paths`` is one capture or a list of them, in any mix. A result's ``name`` (the
    ``capture`` column) is the path as given; for a file object its ``name`` if that is text,
    else ``<stream>`` (``<stream 1>``, ``<stream 2>``, … for several).

    ``keylog``: key log file(s) in the SSLKEYLOGFILE format, to decrypt the server's choice
    in TLS 1.3 and QUIC (pcapng Decryption Secrets Blocks are used in any case).
    """
    from .keys.keylog import KeyLog
    from .parallel import analyze_parallel, auto_jobs

    inputs = _inputs(paths)
    keys = None
    if keylog is not None:
        keys = KeyLog()
        for path in [keylog] if isinstance(keylog, str | os.PathLike) else keylog:
            keys.load(path)
    names = _stream_names(inputs)
    results = []
    for i, item in enumerate(inputs):
        if i in names:
            results.append(_analyze_stream(cast(BinaryIO, item), names[i], keys))
        else:
            path = cast(PathLike, item)
            results.append(analyze_parallel(path, auto_jobs(path), keylog=keys))
    return results


def run_attrs(results: Iterable[RunResult], *, shared_keylog: bool = False) -> dict[str, Any]:
    """``df.attrs`` of a read: ``stats`` (every count, summed over the captures, as the CLI's
    ``--stats`` sums them: :func:`alpnsniff.pipeline.add_run_stats`; ``shared_keylog``: one
    key log was given for all), ``stats_by_capture`` ({capture: counts}) and ``errors``
    ({capture: lines}, only captures with errors; why reading stopped early comes first).
    A capture given twice is one key: its counts summed, its lines one after the other."""
    from .pipeline import add_run_stats

    total: Counter[str] = Counter()
    by_capture: dict[str, Counter[str]] = {}
    errors: dict[str, list[str]] = {}
    for r in results:
        add_run_stats(total, r.stats, shared_keylog=shared_keylog)
        add_run_stats(
            by_capture.setdefault(r.name, Counter()), r.stats, shared_keylog=shared_keylog
        )
        if r.errors:
            errors.setdefault(r.name, []).extend(r.errors)
    return {
        "stats": dict(total),
        "stats_by_capture": {name: dict(counts) for name, counts in by_capture.items()},
        "errors": errors,
    }


def read(paths: Captures, *, keylog: PathLike | Iterable[PathLike] | None = None) -> pd.DataFrame:
    """One row per handshake from one or several captures (columns: see the README).

    ``paths``: as :func:`analyze` takes them (paths, ``"-"``, binary file objects).
    ``df.attrs["stats"]`` holds every count of the run, summed over the captures (packets,
    skips by reason, evictions, ``truncated_records`` / ``corrupt_records``);
    ``df.attrs["stats_by_capture"]`` the same per capture and ``df.attrs["errors"]`` each
    capture's error lines (why reading stopped early first, then the first dissection
    errors), both keyed by the ``capture`` column's value; ``df.attrs["provenance"]`` where
    the rows came from (the captures' paths, sizes and times, alpnsniff's version: see
    :mod:`alpnsniff.sinks.provenance`; ``sha256`` null: a read does not read its inputs
    twice, ``alpnsniff read -T parquet`` hashes them).
    """
    from .sinks.frame import to_dataframe
    from .sinks.provenance import run_provenance

    keylogs = [keylog] if isinstance(keylog, str | os.PathLike) else list(keylog or [])
    results = analyze(paths, keylog=keylogs if keylog is not None else None)
    df = to_dataframe((r.name, h) for r in results for h in r.handshakes)
    df.attrs.update(run_attrs(results, shared_keylog=keylog is not None))
    df.attrs["provenance"] = run_provenance(
        [r.name for r in results], keylogs=[os.fspath(k) for k in keylogs], digest=False
    )
    return df


def load(path: PathLike | BinaryIO) -> pd.DataFrame:
    """The DataFrame of a Parquet file ``alpnsniff read --format parquet`` wrote: the same
    as :func:`read` gave (dtypes, lists, ``attrs``: stats, stats_by_capture, errors)."""
    from .sinks.frame import read_parquet

    return read_parquet(path)


def sniff(interfaces: str | Iterable[str], **options: Any) -> pd.DataFrame:
    """The handshakes seen on live interfaces for a while, as a DataFrame like :func:`read`
    gives: ``sniff("eth0", duration=10, filter="tcp port 443")``; see
    :func:`alpnsniff.live.sniff` for the options (needs CAP_NET_RAW)."""
    from .live import sniff as sniff_live

    return sniff_live(interfaces, **options)


def stream(interfaces: str | Iterable[str], **options: Any) -> Iterator[Handshake]:
    """Handshake records from live interfaces as each completes; see
    :func:`alpnsniff.live.stream` for the options (needs CAP_NET_RAW)."""
    from .live import stream as stream_live

    return stream_live(interfaces, **options)
