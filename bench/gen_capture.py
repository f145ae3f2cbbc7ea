"""Generate the benchmark capture: a deterministic, realistic classic pcap of TLS, QUIC and noise.

    python bench/gen_capture.py OUT.pcap --packets 1000000 [--seed 1] [--quic-share 0.2]
                                         [--truth TRUTH.ndjson] [--keylog OUT.keys]

Writes OUT.pcap (Ethernet, microsecond timestamps; the same arguments give a byte-identical
file) and prints a JSON summary on stdout: what the file holds and the exact counts a
dissector should find (see bench/README.md for every key). With --keylog, also writes the
SERVER_HANDSHAKE_TRAFFIC_SECRET of half the TLS 1.3 connections (their server flights are
really sealed; the pcap is the same with or without --keylog). Packets are produced by many
interleaved connection scripts (bench/gen_flows.py, bench/gen_noise.py) and streamed to disk.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from gen_flows import (
    Ctx,
    Frames,
    Tally,
    choose_tls,
    tls_flow,
    tls_midstream_flow,
)
from gen_noise import dns_flow, http_flow, ssh_flow
from gen_packets import PcapWriter
from gen_quic_flows import choose_quic, quic_flow, quic_midstream_flow

# Connections open at once; the scheduler picks the next packet's connection at random.
CONCURRENT_FLOWS = 64
# Share of packets that are DNS, plain HTTP and SSH.
NOISE_SHARE = 0.06
# Mean gap between packets in microseconds (1M packets span about 25 s).
MEAN_GAP_US = 25
# Capture start: 2024-05-01 12:00:00 UTC.
START_US = 1_714_564_800 * 1_000_000


def _spawn(ctx: Ctx, kind: str) -> tuple[Frames, int]:
    """A new connection of ``kind`` and its expected packet count."""
    rng = ctx.rng
    if kind == "tls":
        spec = choose_tls(ctx)
        return tls_flow(ctx, spec), 16 + len(spec.offers or ()) + spec.n_bulk * 3 // 2
    if kind == "quic":
        qspec = choose_quic(ctx)
        return quic_flow(ctx, qspec), 6 + qspec.n_bulk * 3 // 2
    r = rng.random()
    if r < 0.45:
        return dns_flow(ctx), 2
    if r < 0.75:
        return http_flow(ctx), 16
    return ssh_flow(ctx), 20


def _midstream(ctx: Ctx, kind: str) -> tuple[Frames, int]:
    rng = ctx.rng
    n = 5 + int(rng.lognormvariate(3.5, 1.0))
    ipv6 = rng.random() < 0.15
    if kind == "quic":
        return quic_midstream_flow(ctx, n, ipv6), n * 3 // 2
    return tls_midstream_flow(ctx, n, ipv6), n * 3 // 2 + 3


class Scheduler:
    """Chooses what kind of connection to open next so that packet shares meet their targets."""

    def __init__(self, quic_share: float) -> None:
        self.targets = {
            "tls": 1.0 - quic_share - NOISE_SHARE,
            "quic": quic_share,
            "noise": NOISE_SHARE,
        }
        self.planned = dict.fromkeys(self.targets, 0)

    def pick(self) -> str:
        total = sum(self.planned.values()) + 1
        return max(self.targets, key=lambda k: self.targets[k] * total - self.planned[k])

    def add(self, kind: str, packets: int) -> None:
        self.planned[kind] += packets


def generate(
    out: Path,
    packets: int,
    seed: int = 1,
    quic_share: float = 0.2,
    truth: Path | None = None,
    keylog: Path | None = None,
    mean_gap_us: float = MEAN_GAP_US,
) -> dict[str, Any]:
    """Write the capture and return its summary (without the timing fields).
    ``mean_gap_us``: the mean gap between packets (the capture's span: about ``packets``
    times it; a notebook's time series wants minutes, the benchmark seconds)."""
    if not 0.0 <= quic_share <= 1.0 - NOISE_SHARE:
        raise ValueError(f"--quic-share must be between 0 and {1.0 - NOISE_SHARE}")
    tally = Tally(
        truth=[] if truth is not None else None, keylog=[] if keylog is not None else None
    )
    ctx = Ctx(seed, tally)
    rng = ctx.rng
    sched = Scheduler(quic_share)
    active: list[Iterator[bytes]] = []
    for _ in range(CONCURRENT_FLOWS):
        kind = sched.pick()
        maker: Callable[[Ctx, str], tuple[Frames, int]] = (
            _midstream if kind != "noise" and rng.random() < 0.5 else _spawn
        )
        flow, est = maker(ctx, kind)
        sched.add(kind, est)
        active.append(flow)
    clock = START_US
    expo = rng.expovariate
    uniform = rng.random
    if not mean_gap_us > 0:
        raise ValueError("--mean-gap-us must be more than 0")
    rate = 1.0 / mean_gap_us
    truth_fh = truth.open("w") if truth is not None else None
    keylog_fh = keylog.open("w", encoding="ascii") if keylog is not None else None
    with out.open("wb") as fh:
        writer = PcapWriter(fh)
        while writer.packets < packets:
            i = int(uniform() * CONCURRENT_FLOWS)
            frame = next(active[i], None)
            if frame is None:
                kind = sched.pick()
                flow, est = _spawn(ctx, kind)
                sched.add(kind, est)
                active[i] = flow
                continue
            clock += 1 + int(expo(rate))
            writer.write(clock, frame)
            if truth_fh is not None and tally.truth:
                for rec in tally.truth:
                    truth_fh.write(json.dumps(rec, sort_keys=True) + "\n")
                tally.truth.clear()
            if keylog_fh is not None and tally.keylog:
                keylog_fh.writelines(tally.keylog)
                tally.keylog.clear()
        writer.close()
    if truth_fh is not None:
        truth_fh.close()
    if keylog_fh is not None:
        keylog_fh.close()
    return summarize(tally, writer, seed, quic_share, clock)


def summarize(
    tally: Tally, writer: PcapWriter, seed: int, quic_share: float, clock: int
) -> dict[str, Any]:
    def d(c: Any) -> dict[str, int]:
        return dict(sorted(c.items()))

    tcp_total = sum(tally.tcp_client_hellos.values())
    two = sum(tally.tcp_client_hellos_two_segments.values())
    ooo = tally.tcp_ch_out_of_order
    retrans_two = tally.tcp_ch_retransmitted["two_segments"]
    quic_total = sum(tally.quic_client_hellos.values())
    return {
        "seed": seed,
        "quic_share": quic_share,
        "packets": writer.packets,
        "bytes": writer.bytes,
        "duration_s": round((clock - START_US) / 1e6, 6),
        "connections": d(tally.connections),
        "ipv6_connections": tally.ipv6_connections,
        "tls": {
            "client_hellos": tcp_total,
            "client_hellos_by_alpn": d(tally.tcp_client_hellos),
            "two_segment_client_hellos": sum(tally.tcp_client_hellos_two_segments.values()),
            "two_segment_client_hellos_by_alpn": d(tally.tcp_client_hellos_two_segments),
            "client_hellos_by_template": d(tally.tcp_client_hellos_by_template),
            "retransmitted_client_hellos": d(tally.tcp_ch_retransmitted),
            "out_of_order_client_hellos_by_alpn": d(tally.tcp_ch_out_of_order),
            "server_hellos_by_alpn": d(tally.tcp_server_hellos),
            "server_hellos_by_version": d(tally.tcp_server_hello_versions),
            "tls13_server_flights_by_keylog": d(tally.tcp_tls13_flights),
        },
        "quic": {
            "client_hellos": quic_total,
            "client_hellos_by_alpn": d(tally.quic_client_hellos),
            "two_initial_client_hellos": sum(tally.quic_client_hellos_two_initials.values()),
            "client_hellos_by_template": d(tally.quic_client_hellos_by_template),
            "client_initial_packets_with_crypto": tally.quic_client_initial_packets,
            "server_hellos": tally.quic_server_hellos,
        },
        "expected": {
            "tls_client_hellos_by_alpn": d(tally.tcp_client_hellos),
            "quic_client_hellos_by_alpn": d(tally.quic_client_hellos),
            "tls_server_hellos_by_alpn": d(tally.tcp_server_hellos),
            "quic_server_hellos": tally.quic_server_hellos,
            "decrypted_by_alpn": d(tally.tcp_decryptable_ee),
            "tshark": {
                "default": {
                    "tls_client_hellos_by_alpn": d(tally.tcp_client_hellos - ooo),
                    "decrypted_by_alpn": d(tally.tcp_decryptable_ee - tally.tcp_decryptable_ee_ooo),
                    "tcp_segment_count_2": two - sum(ooo.values()),
                    "tcp_segment_count_3": 0,
                },
                "reassemble_out_of_order": {
                    "tls_client_hellos_by_alpn": d(tally.tcp_client_hellos),
                    "decrypted_by_alpn": d(tally.tcp_decryptable_ee),
                    "tcp_segment_count_2": two - retrans_two,
                    "tcp_segment_count_3": retrans_two,
                },
            },
        },
    }


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path, help="pcap file to write")
    ap.add_argument("--packets", type=int, default=1_000_000, help="exact number of packets")
    ap.add_argument("--seed", type=int, default=1, help="random seed (same seed, same bytes)")
    ap.add_argument("--quic-share", type=float, default=0.2, help="share of packets that are QUIC")
    ap.add_argument("--truth", type=Path, help="also write one JSON line per ClientHello")
    ap.add_argument(
        "--keylog", type=Path, help="also write the key log (half the TLS 1.3 connections)"
    )
    ap.add_argument("--sha256", action="store_true", help="add the file's sha256 to the summary")
    ap.add_argument(
        "--mean-gap-us",
        type=float,
        default=MEAN_GAP_US,
        help="mean gap between packets, us (default %(default)s: 1M packets span about 25 s)",
    )
    args = ap.parse_args(argv)
    if args.packets < 1:
        ap.error("--packets must be at least 1")
    t0 = time.perf_counter()
    try:
        summary = generate(
            args.out,
            args.packets,
            args.seed,
            args.quic_share,
            args.truth,
            args.keylog,
            args.mean_gap_us,
        )
    except ValueError as exc:
        ap.error(str(exc))
    summary["generation_seconds"] = round(time.perf_counter() - t0, 3)
    if args.sha256:
        summary["sha256"] = sha256_file(args.out)
    json.dump(summary, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
