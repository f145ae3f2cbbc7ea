"""Timing of the decryption stage (run by hand: python tests/keys/bench_keys.py).

Per connection with keys: one key derivation, then a few records or packets. CPU time of
this process (steadier than wall time on a shared machine), best of 5.
"""

from __future__ import annotations

import sys
import time
import timeit
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[2])]

from keyscap import (  # noqa: E402  # noqa: E402
    REALCAP,
    client_random,
    keylog_for,
    quic_server_datagrams,
    records,
    server_hello,
    tcp_connections,
)
from rfc_vectors import RFC8448_FLIGHT_RECORD, RFC8448_SERVER_HS_SECRET  # noqa: E402

from alpnsniff.keys.keylog import KeyLog  # noqa: E402
from alpnsniff.keys.quic_handshake import QuicHandshakeDecryptor  # noqa: E402
from alpnsniff.keys.tls13 import Tls13ServerFlightDecryptor  # noqa: E402
from alpnsniff.quic.packets import LongHeaderPacket, split_datagram  # noqa: E402
from alpnsniff.quic.versions import LongPacketType  # noqa: E402
from alpnsniff.tls.hello import parse_client_hello, parse_server_hello  # noqa: E402
from alpnsniff.tls.messages import parse_encrypted_extensions  # noqa: E402


def per_call_us(stmt: object, number: int) -> float:
    runs = timeit.repeat(stmt, number=number, repeat=5, timer=time.process_time)  # type: ignore[arg-type]
    return min(runs) / number * 1e6


def feed_only_us(make: object, feed: object, number: int) -> float:
    """Time ``feed(d)`` over fresh objects from ``make()``, made outside the timing."""
    best = float("inf")
    for _ in range(5):
        objs = [make() for _ in range(number)]  # type: ignore[operator]
        start = time.process_time()
        for obj in objs:
            feed(obj)  # type: ignore[operator]
        best = min(best, time.process_time() - start)
    return best / number * 1e6


def main() -> None:
    rows: list[tuple[str, object, int]] = []
    # TLS 1.3: RFC 8448's 679-byte record (EE, Certificate, CV, Finished), AES-128-GCM
    rec = RFC8448_FLIGHT_RECORD
    hdr, body = rec[:5], rec[5:]
    rows.append(
        (
            "tls13: new decryptor (HKDF x2, AESGCM)",
            lambda: Tls13ServerFlightDecryptor(0x1301, RFC8448_SERVER_HS_SECRET),
            20_000,
        )
    )
    rows.append(
        (
            "tls13: new + feed 679-byte record",
            lambda: Tls13ServerFlightDecryptor(0x1301, RFC8448_SERVER_HS_SECRET).feed_record(
                23, hdr, body
            ),
            20_000,
        )
    )
    # a real openssl server's first encrypted record: EncryptedExtensions alone, AES-256-GCM
    path = REALCAP / "openssl_tls13_alpn_h2.pcap"
    (conn,) = tcp_connections(path)
    recs = records(conn.server.data)
    sh, i = server_hello(recs)
    secret = (
        keylog_for(path)
        .secrets_for(client_random(conn.client.data))
        .server_handshake_traffic_secret
    )  # type: ignore[union-attr]
    ee_rec = recs[i + 1] if recs[i].content_type == 20 else recs[i]
    rows.append(
        (
            f"tls13: new + feed {len(ee_rec.payload)}-byte EE record (openssl, 0x1302)",
            lambda: Tls13ServerFlightDecryptor(sh.cipher_suite, secret).feed_record(
                23, ee_rec.header, ee_rec.payload
            ),
            20_000,
        )
    )
    ee_body = (
        Tls13ServerFlightDecryptor(sh.cipher_suite, secret)
        .feed_record(23, ee_rec.header, ee_rec.payload)[0]
        .body
    )  # type: ignore[union-attr]
    rows.append(
        ("tls13: parse_encrypted_extensions", lambda: parse_encrypted_extensions(ee_body), 100_000)
    )
    # QUIC: aioquic's one-packet Handshake flight (AES-256-GCM, AES header protection)
    for name in ("aioquic_h3_v1", "chromium_aioquic_h3_quicv2_lo"):
        qpath = REALCAP / f"{name}.pcap"
        ch, shev, grams = quic_server_datagrams(qpath)
        qsecret = (
            keylog_for(qpath)
            .secrets_for(parse_client_hello(ch.message[4:]).random)
            .server_handshake_traffic_secret
        )  # type: ignore[union-attr]
        suite = parse_server_hello(shev.message[4:]).cipher_suite
        pkt = next(
            p
            for d in grams
            for p in split_datagram(d.payload)
            if isinstance(p, LongHeaderPacket) and p.packet_type is LongPacketType.HANDSHAKE
        )
        version = shev.version
        rows.append(
            (
                f"quic: new decryptor ({name})",
                lambda version=version, suite=suite, qsecret=qsecret: QuicHandshakeDecryptor(
                    version, suite, qsecret
                ),
                20_000,
            )
        )
        rows.append(
            (
                f"quic: new + feed {len(pkt.data)}-byte Handshake packet ({name})",
                lambda version=version, suite=suite, qsecret=qsecret, pkt=pkt: (
                    QuicHandshakeDecryptor(version, suite, qsecret).feed_packet(pkt)
                ),
                10_000,
            )
        )
    # steady state: keys already derived (done once per connection), one record / packet
    extra = [
        (
            "tls13: feed 679-byte record, decryptor ready",
            feed_only_us(
                lambda: Tls13ServerFlightDecryptor(0x1301, RFC8448_SERVER_HS_SECRET),
                lambda d: d.feed_record(23, hdr, body),
                20_000,
            ),
        ),
        (
            f"tls13: feed {len(ee_rec.payload)}-byte EE record, decryptor ready",
            feed_only_us(
                lambda: Tls13ServerFlightDecryptor(sh.cipher_suite, secret),
                lambda d: d.feed_record(23, ee_rec.header, ee_rec.payload),
                20_000,
            ),
        ),
    ]

    def warm() -> QuicHandshakeDecryptor:
        d = QuicHandshakeDecryptor(version, suite, qsecret)
        d._keys_for(b"quicv2" if version != 1 else b"quic")  # what the first packet pays
        return d

    extra.append(
        (
            f"quic: feed {len(pkt.data)}-byte Handshake packet, keys ready",
            feed_only_us(warm, lambda d: d.feed_packet(pkt), 10_000),
        )
    )
    log_text = "\n".join(f"CLIENT_RANDOM {i:064x} {'ab' * 48}" for i in range(1000))
    rows.append(("keylog: 1000 CLIENT_RANDOM lines", lambda: KeyLog().add_text(log_text), 50))
    for label, stmt, number in rows:
        print(f"{label:75s} {per_call_us(stmt, number):9.2f} µs")
    for label, us in extra:
        print(f"{label:75s} {us:9.2f} µs")


if __name__ == "__main__":
    main()
