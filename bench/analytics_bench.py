"""Benchmark of alpnsniff.analytics.shares on a large handshake DataFrame, and of its memory.

    python bench/analytics_bench.py [--rows 1000000] [--repeat 3] [--seed 1] [--no-shared]

The frame is made the way ``alpnsniff.read`` makes one, so its dtypes and its objects are a
real read's: the handshakes of every bundled capture (``captures/``) and, unless
``--no-shared``, of ``../shared/realcap`` and ``../shared/corpus/pcaps`` (real software and
third-party test captures: several hundred distinct offers) are drawn at random ``--rows``
times, each copy given its own time (spread over 24 hours, in order), server name (20,000
names, Zipf-distributed as real traffic is), client and server address and client port; one
copy in ten gets a GREASE ALPN ID before its offer, as a GREASEing client would send it (no
real client in the corpus does, and the code path must be timed). The records then go
through ``alpnsniff.sinks.frame.to_dataframe``, the DataFrame sink of ``read``: each row's
ALPN text is its own string, as in a read.

Then, each timed as the fastest of ``--repeat`` runs: every function of
:mod:`alpnsniff.analytics.shares`, with and without ``by``; the same on the frame
:func:`alpnsniff.analytics.compact` makes (Arrow lists, categorical repeated text).
Memory: ``df.memory_usage(deep=True)`` per row and per column; for the list columns also
their real size (pandas counts a list cell's list object, not the strings in it); and what
the larger columns would take as Arrow lists, Arrow dictionary lists and categoricals.
Prints every figure and whether each function met ``TARGET_SECONDS``.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

import alpnsniff  # noqa: E402  (from this tree)
from alpnsniff.analytics import compact, shares  # noqa: E402
from alpnsniff.records import Handshake  # noqa: E402
from alpnsniff.sinks.frame import to_dataframe  # noqa: E402

# Issue 11: every function on 1M rows "in a few seconds" on the 2-core machine.
TARGET_SECONDS = 3.0
DAY_NS = 86_400 * 10**9
START_NS = 1_795_305_600 * 10**9  # 2026-11-22 00:00 UTC, the day the captures were made
SNI_NAMES = 20_000
CLIENTS = 50_000
SERVERS = 5_000
GREASE_SHARE = 0.1
LIST_COLUMNS = ("alpn_offered", "alpn_offered_hex", "extensions", "notes", "alps", "npn_server")
TEXT_COLUMNS = ("sni", "client_ip", "server_ip", "capture", "tls_version", "client_version")


def base_records(shared: bool) -> list[tuple[str, Handshake]]:
    """(capture name, record) of every handshake in the bundled (and shared) captures."""
    paths = sorted(str(p) for p in (REPO / "captures").glob("*.pcap*"))
    if shared:
        for folder in (
            REPO.parent / "shared" / "realcap",
            REPO.parent / "shared" / "corpus" / "pcaps",
        ):
            if folder.is_dir():
                paths += sorted(str(p) for p in folder.iterdir() if ".pcap" in p.name)
    out: list[tuple[str, Handshake]] = []
    for path in paths:
        try:
            results = alpnsniff.analyze(path)
        except Exception as err:  # a damaged corpus file: left out, said
            print(f"  (left out {Path(path).name}: {err})")
            continue
        out.extend((Path(r.name).name, h) for r in results for h in r.handshakes)
    return out


def make_frame(rows: int, seed: int, shared: bool) -> tuple[pd.DataFrame, dict[str, float]]:
    """The benchmark frame and how long its parts took to make."""
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    base = base_records(shared)
    times["read the captures"] = time.perf_counter() - t0
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(base), rows)
    ts = START_NS + np.sort(rng.integers(0, DAY_NS, rows))
    sni_rank = np.minimum(rng.zipf(1.3, rows), SNI_NAMES) - 1
    names = [f"host{k % 97}.site{k}.example" for k in range(SNI_NAMES)]
    clients = [f"10.{k >> 16 & 255}.{k >> 8 & 255}.{k & 255}" for k in range(CLIENTS)]
    clients_v6 = [f"2001:db8:c::{k:x}" for k in range(CLIENTS)]  # beside an IPv6 server
    servers = [
        f"192.0.{k >> 8 & 255}.{k & 255}" if k < 512 else f"2001:db8::{k:x}" for k in range(SERVERS)
    ]
    client = rng.integers(0, CLIENTS, rows)
    server = rng.integers(0, SERVERS, rows)
    port = rng.integers(32768, 61000, rows)
    grease = rng.random(rows) < GREASE_SHARE
    grease_id = rng.integers(0, 16, rows)
    t0 = time.perf_counter()
    items: list[tuple[str, Handshake]] = []
    for i in range(rows):
        capture, h = base[pick[i]]
        offered = h.alpn_offered_raw
        if grease[i] and offered:
            g = 0x0A + 0x10 * int(grease_id[i])
            offered = (bytes([g, g]), *offered)
        items.append(
            (
                capture,
                dataclasses.replace(
                    h,
                    ts_ns=int(ts[i]),
                    sni=None if h.sni is None else names[sni_rank[i]],
                    client_ip=(clients_v6 if server[i] >= 512 else clients)[client[i]],
                    client_port=int(port[i]),
                    server_ip=servers[server[i]],
                    alpn_offered_raw=offered,
                ),
            )
        )
    times["make the records"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    df = to_dataframe(items)
    times["to_dataframe (read's sink)"] = time.perf_counter() - t0
    del items, base
    gc.collect()
    return df, times


def best_of(n: int, fn: Callable[[], Any]) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(max(1, n)):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def deep_list_bytes(col: pd.Series) -> int:
    """Bytes of an object column of lists: the column's pointers, each list, and each
    distinct object in them (the frame sink shares one string per distinct ALPN text, not
    per hex)."""
    total, seen = 8 * len(col), set()
    for cell in col:
        total += sys.getsizeof(cell)
        if cell is None:
            continue
        for item in cell:
            if id(item) not in seen:
                seen.add(id(item))
                total += sys.getsizeof(item)
    return total


def arrow_sizes(col: pd.Series) -> tuple[int, int]:
    """(bytes as an Arrow list array, bytes as an Arrow list of dictionary-encoded items)."""
    arr = pa.array(col, from_pandas=True)
    values = pc.list_flatten(arr)
    if pa.types.is_integer(values.type):
        return arr.nbytes, arr.nbytes
    encoded = pc.dictionary_encode(values)
    small = encoded.indices.cast(pa.int16()) if len(encoded.dictionary) < 2**15 else encoded.indices
    dict_list = pa.ListArray.from_arrays(
        arr.offsets, pa.DictionaryArray.from_arrays(small, encoded.dictionary), mask=arr.is_null()
    )
    return arr.nbytes, dict_list.nbytes


def memory_report(df: pd.DataFrame) -> None:
    rows = len(df)
    usage = df.memory_usage(deep=True, index=False)
    total = int(usage.sum())
    print(
        f"\nmemory, df.memory_usage(deep=True): {total / 2**20:,.0f} MiB, {total / rows:,.0f} B a row"
    )
    print("  largest columns (B a row, as pandas counts):")
    for name, n in usage.sort_values(ascending=False).head(10).items():
        print(f"    {name:<18} {n / rows:8.1f}  {df[name].dtype}")
    print("  list columns: real size (lists + the strings in them) vs Arrow (B a row):")
    print(f"    {'column':<18} {'pandas':>8} {'real':>8} {'arrow':>8} {'arrow dict':>10}")
    real_total = 0
    for name in LIST_COLUMNS:
        real = deep_list_bytes(df[name])
        real_total += real - int(usage[name])
        arrow, arrow_dict = arrow_sizes(df[name])
        print(
            f"    {name:<18} {usage[name] / rows:8.1f} {real / rows:8.1f} {arrow / rows:8.1f} "
            f"{arrow_dict / rows:10.1f}"
        )
    print(
        f"  real total: {(total + real_total) / rows:,.0f} B a row (the list cells' strings counted)"
    )
    print("  text columns (B a row): as read vs categorical")
    for name in TEXT_COLUMNS:
        as_read = int(usage[name])
        cat = int(df[name].astype("category").memory_usage(deep=True, index=False))
        print(
            f"    {name:<18} {as_read / rows:8.1f} {cat / rows:8.1f}  ({df[name].nunique():,} distinct, {df[name].dtype})"
        )


def cases_of(df: pd.DataFrame) -> list[tuple[str, Callable[[], Any]]]:
    half = len(df) // 2
    a, b = df.iloc[:half], df.iloc[half:]
    return [
        ("offers", lambda: shares.offers(df)),
        ("offer_share", lambda: shares.offer_share(df)),
        ("offer_share include_ech", lambda: shares.offer_share(df, include_ech=True)),
        ("offer_share first", lambda: shares.offer_share(df, first=True)),
        ("offer_share by sni", lambda: shares.offer_share(df, by="sni")),
        (
            "offer_share by transport,server_port",
            lambda: shares.offer_share(df, by=["transport", "server_port"]),
        ),
        ("offer_share by client_ip", lambda: shares.offer_share(df, by="client_ip")),
        ("selection_share", lambda: shares.selection_share(df)),
        ("selection_share by sni", lambda: shares.selection_share(df, by="sni")),
        ("outcomes", lambda: shares.outcomes(df)),
        ("outcomes by capture", lambda: shares.outcomes(df, by="capture")),
        ("honoured", lambda: shares.honoured(df)),
        ("honoured by sni", lambda: shares.honoured(df, by="sni")),
        ("preference", lambda: shares.preference(df)),
        ("timeline 1min offered", lambda: shares.timeline(df, freq="1min")),
        ("timeline 1min selected", lambda: shares.timeline(df, freq="1min", of="selected")),
        ("timeline 10s offered", lambda: shares.timeline(df, freq="10s")),
        ("compare halves", lambda: shares.compare(a, b)),
    ]


def run_cases(df: pd.DataFrame, repeat: int) -> float:
    """Every case timed (fastest of ``repeat``); the slowest time."""
    slowest = 0.0
    for name, fn in cases_of(df):
        s, out = best_of(repeat, fn)
        slowest = max(slowest, s)
        print(
            f"  {name:<40} {s:6.2f} s  {s * 1e9 / len(df):6.0f} ns a row  ({len(out):,})",
            flush=True,
        )
    return slowest


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-shared", action="store_true", help="the bundled captures only")
    args = ap.parse_args()

    print(f"building a {args.rows:,}-row frame ...", flush=True)
    df, made = make_frame(args.rows, args.seed, not args.no_shared)
    for what, s in made.items():
        print(f"  {what}: {s:.2f} s")
    lengths = df["alpn_offered"].map(len, na_action="ignore")
    print(
        f"  {len(df):,} rows: {int(df['alpn_offered'].notna().sum()):,} ClientHellos seen, "
        f"{int(df['ech'].fillna(False).sum()):,} with ECH, {lengths.mean():.2f} ALPN IDs a "
        f"ClientHello, {df['sni'].nunique():,} server names, "
        f"{int(shares.known_choice(df).sum()):,} known choices"
    )
    print(f"\ntimes on {len(df):,} rows, fastest of {args.repeat} (result rows):")
    slowest = run_cases(df, args.repeat)
    t0 = time.perf_counter()
    try:
        fine = f"{len(shares.timeline(df, freq='1s')):,} rows"
    except ValueError as err:  # MAX_TIMELINE_ROWS
        fine = f"refused: {err}"
    print(f"  timeline 1s offered: {fine} ({time.perf_counter() - t0:.2f} s)")
    t0 = time.perf_counter()
    pa.array(df["alpn_offered"], type=pa.list_(pa.string()), from_pandas=True)
    print(
        f"  (of which turning alpn_offered into one Arrow array: {time.perf_counter() - t0:.2f} s)"
    )
    s_text, _ = best_of(
        args.repeat, lambda: shares.offer_share(df.drop(columns=["alpn_offered_hex"]))
    )
    print(f"  offer_share without alpn_offered_hex (GREASE from the text) {s_text:6.2f} s")

    memory_report(df)
    t0 = time.perf_counter()
    small = compact(df)
    took = time.perf_counter() - t0
    per_row = small.memory_usage(deep=True).sum() / len(small)
    print(
        f"\nanalytics.compact (Arrow lists, categorical repeated text): {took:.2f} s; "
        f"{per_row:,.0f} B a row as pandas counts (as read: "
        f"{df.memory_usage(deep=True).sum() / len(df):,.0f}); the same functions on it:"
    )
    slowest = max(slowest, run_cases(small, args.repeat))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak RSS of this process: {peak:,.0f} MB")
    verdict = "met" if slowest <= TARGET_SECONDS else "MISSED"
    print(
        f"target: every function within {TARGET_SECONDS:.0f} s on {len(df):,} rows: {verdict} (slowest {slowest:.2f} s)"
    )
    return 0 if slowest <= TARGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
