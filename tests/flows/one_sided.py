"""One-direction copies of real captures, for the one-sided tests (an asymmetric span port).

A copy keeps the frames one side sent: the server's (``server``) or the client's
(``client``). Which side a frame is comes from the full capture's own records (each
record's server address and port): a frame is the server's when its innermost source and
destination are a record's server and client endpoints. The frames, their bytes, times
and link types untouched, are written to a new pcapng (one interface per link type; the
interface id of each frame can also be chosen, for the two-interface loss test) by
:func:`write_pcapng` here, with struct; the full capture is read with alpnsniff's capture
layer (gzip, pcap, pcapng) and each frame's innermost 5-tuple (through VLANs and tunnels)
found by alpnsniff's decoder, the same that gave the records' addresses.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterable, Sequence
from pathlib import Path

from alpnsniff.capture import open_capture
from alpnsniff.net.decode import PacketDecoder
from alpnsniff.records import Handshake

Endpoint = tuple[str, int]
Tuple4 = tuple[Endpoint, Endpoint]  # (source, destination)
Frame = tuple[int, int, bytes]  # (ts_ns, linktype, bytes)


def read_frames(path: Path) -> list[Frame]:
    with open_capture(path) as source:
        return list(source.packets())


def _inet(ip: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET if len(ip) == 4 else socket.AF_INET6, ip)


def frame_tuples(frames: Iterable[Frame]) -> list[Tuple4 | None]:
    """The innermost (source, destination) endpoints of each frame (None: not TCP/UDP)."""
    decoder = PacketDecoder()
    out: list[Tuple4 | None] = []
    for ts_ns, link, data in frames:
        seg = decoder.decode(link, data, ts_ns)
        if isinstance(seg, str):
            out.append(None)
        else:
            out.append(((_inet(seg.src), seg.sport), (_inet(seg.dst), seg.dport)))
    return out


def server_to_client(records: Iterable[Handshake]) -> set[Tuple4]:
    """The (server, client) endpoint pairs of the records: frames the server sent."""
    return {((h.server_ip, h.server_port), (h.client_ip, h.client_port)) for h in records}


def _block(kind: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    n = len(body) + 12
    return struct.pack("<II", kind, n) + body + struct.pack("<I", n)


def write_pcapng(
    out: Path, frames: Sequence[Frame], interfaces: Sequence[int] | None = None
) -> None:
    """A pcapng of ``frames`` with nanosecond times (if_tsresol 9). ``interfaces``: the
    interface id of each frame (their link type: the first frame's); by default one
    interface per link type, in order of appearance."""
    shb = _block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    tsresol = struct.pack("<HHB", 9, 1, 9) + b"\0\0\0" + b"\0\0\0\0"  # + opt_endofopt
    links: list[int] = []
    if interfaces is None:
        links = list(dict.fromkeys(link for _, link, _ in frames))
        ids = [links.index(link) for _, link, _ in frames]
    else:
        links = [frames[0][1]] * (max(interfaces) + 1)
        ids = list(interfaces)
    idbs = [_block(1, struct.pack("<HHI", link, 0, 262144) + tsresol) for link in links]
    epbs = [
        _block(6, struct.pack("<IIIII", i, ts >> 32, ts & 0xFFFFFFFF, len(d), len(d)) + d)
        for i, (ts, _, d) in zip(ids, frames, strict=True)
    ]
    out.write_bytes(b"".join([shb, *idbs, *epbs]))


def write_one_side(
    src: Path, out: Path, records: Iterable[Handshake], side: str
) -> tuple[int, int]:
    """Write the frames ``side`` ("server" or "client") sent, of ``src``, to ``out``; frames
    of no record's connection are kept in both copies. Returns (frames kept, dropped)."""
    frames = read_frames(src)
    server = server_to_client(records)
    drop = {(c, s) for s, c in server} if side == "server" else server
    kept = [f for f, t in zip(frames, frame_tuples(frames), strict=True) if t not in drop]
    write_pcapng(out, kept)
    return len(kept), len(frames) - len(kept)
