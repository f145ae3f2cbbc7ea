"""Where a table's rows came from: the ``provenance`` a Parquet file carries (``df.attrs``).

A Parquet file of alpnsniff's says which captures it was read from and by what, so that a
table found in a data lake months later can be traced to its inputs and checked against
them (``sha256sum capture.pcap``)::

    {"alpnsniff": "0.1.0", "build": "compiled (mypyc)", "python": "3.11.7",
     "captures": [{"name": "t.pcap", "path": "/data/t.pcap", "size": 1234,
                   "mtime": "2026-12-02T08:00:00.000000000Z", "sha256": "…"}],
     "interfaces": [], "keylogs": ["tls.keys"]}

``name`` is the capture as given (the ``capture`` column's value); ``path`` its absolute
path; ``size``, ``mtime`` and ``sha256`` describe the file as it is when the table is
written (a regular file: read once more to hash it, about 1 s a GB; standard input or a
FIFO: ``path``, ``size``, ``mtime`` and ``sha256`` are null — what was read is gone). A live
run names its ``interfaces`` instead. The key logs are named, never their contents.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import platform
import stat
from collections.abc import Iterable
from typing import Any

from .rows import iso_ts

# bytes read at a time while hashing
_CHUNK = 1 << 20


def file_sha256(path: str) -> str:
    """The SHA-256 of a file's bytes, hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def capture_provenance(name: str, *, digest: bool = True) -> dict[str, Any]:
    """One capture's entry (see the module's docstring); ``digest=False``: no ``sha256``
    (null), for a caller that will not pay for hashing a large file."""
    entry: dict[str, Any] = {"name": name, "path": None, "size": None, "mtime": None}
    entry["sha256"] = None
    if name == "-":
        return entry
    try:
        st = os.stat(name)
    except OSError:
        return entry
    if not stat.S_ISREG(st.st_mode):  # a FIFO or a device: its bytes are read once
        return entry
    entry["path"] = os.path.abspath(name)
    entry["size"] = st.st_size
    entry["mtime"] = iso_ts(st.st_mtime_ns)
    if digest:
        with contextlib.suppress(OSError):  # (unreadable now: no hash, the rest stands)
            entry["sha256"] = file_sha256(name)
    return entry


def run_provenance(
    captures: Iterable[str],
    *,
    interfaces: Iterable[str] = (),
    keylogs: Iterable[str] = (),
    digest: bool = True,
) -> dict[str, Any]:
    """The ``provenance`` of a run over ``captures`` (each named once, in order)."""
    from .. import __version__
    from .._build_plan import build_kind

    return {
        "alpnsniff": __version__,
        "build": build_kind(),
        "python": platform.python_version(),
        "captures": [capture_provenance(n, digest=digest) for n in dict.fromkeys(captures)],
        "interfaces": list(interfaces),
        "keylogs": list(keylogs),
    }
