"""alpnsniff: which application protocols (ALPN) TLS and QUIC peers negotiate, from the wire.

``alpnsniff.read(paths)`` gives a pandas DataFrame, one row per handshake; importing this
package does not import pandas (the CLI's ndjson path never needs it).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING

from .records import Handshake, Selection

if TYPE_CHECKING:
    import pandas as pd

    from .pipeline import RunResult

__version__ = "0.1.0"
__all__ = ["Handshake", "Selection", "analyze", "read"]

PathLike = str | os.PathLike[str]


def analyze(
    paths: PathLike | Iterable[PathLike], *, keylog: PathLike | Iterable[PathLike] | None = None
) -> list[RunResult]:
    """Read captures; one :class:`~alpnsniff.pipeline.RunResult` each (records and counts).

    ``keylog``: key log file(s) in the SSLKEYLOGFILE format, to decrypt the server's choice
    in TLS 1.3 and QUIC (pcapng Decryption Secrets Blocks are used in any case).
    """
    from .keys.keylog import KeyLog
    from .parallel import analyze_parallel, auto_jobs

    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    keys = None
    if keylog is not None:
        keys = KeyLog()
        for path in [keylog] if isinstance(keylog, str | os.PathLike) else keylog:
            keys.load(path)
    return [analyze_parallel(p, auto_jobs(p), keylog=keys) for p in paths]


def read(
    paths: PathLike | Iterable[PathLike], *, keylog: PathLike | Iterable[PathLike] | None = None
) -> pd.DataFrame:
    """One row per handshake from one or several captures (columns: see the README).

    ``df.attrs["stats"]`` holds every count of the run (packets, skips by reason, evictions);
    ``df.attrs["errors"]`` the first dissection errors of each capture, as text.
    """
    from collections import Counter

    from .sinks.frame import to_dataframe

    results = analyze(paths, keylog=keylog)
    df = to_dataframe((r.name, h) for r in results for h in r.handshakes)
    total: Counter[str] = Counter()
    for r in results:
        total.update(r.stats)
    df.attrs["stats"] = dict(total)
    df.attrs["errors"] = {r.name: r.errors for r in results if r.errors}
    return df
