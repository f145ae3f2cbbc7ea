"""The fuzz rule for the capture layer: any bytes either open and read to the end (packets,
then maybe a counted stop) or raise CaptureError at open. Never another exception, never
a hang; the counts always agree with what was yielded."""

from __future__ import annotations

import io
import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alpnsniff.capture import MAX_CAPLEN, open_capture
from alpnsniff.errors import CaptureError

PCAP_HEADERS = [
    struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1),
    struct.pack(">IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 113),
    struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 65535, 101),
    struct.pack("<IHHiIII", 0xA1B2CD34, 2, 4, 0, 0, 65535, 1),
]


def _block(order: str, btype: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    return (
        struct.pack(order + "II", btype, len(body) + 12)
        + body
        + struct.pack(order + "I", len(body) + 12)
    )


def _pcapng_start(order: str) -> bytes:
    shb = _block(order, 0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1))
    idb = _block(order, 1, struct.pack(order + "H2xI", 1, 0))
    return shb + idb


PCAPNG_STARTS = [_pcapng_start("<"), _pcapng_start(">")]


def check(data: bytes, step: int | None = None) -> None:
    stream: io.RawIOBase | io.BytesIO
    stream = io.BytesIO(data)
    if step is not None:
        stream = _Chunked(data, step)
    try:
        src = open_capture(stream)  # type: ignore[arg-type]
    except CaptureError as err:
        assert "\n" not in str(err)
        return
    n = nbytes = 0
    for ts, lt, pkt in src.packets():
        assert isinstance(ts, int) and isinstance(lt, int) and isinstance(pkt, bytes)
        assert 0 <= lt <= 0xFFFF
        assert len(pkt) <= MAX_CAPLEN
        n += 1
        nbytes += len(pkt)
    stats = src.stats
    assert (stats.packets, stats.bytes) == (n, nbytes)
    assert stats.truncated_records + stats.corrupt_records <= 1
    if stats.truncated_records or stats.corrupt_records:
        assert stats.error is not None and "\n" not in stats.error


class _Chunked(io.RawIOBase):
    def __init__(self, data: bytes, step: int) -> None:
        self._data, self._pos, self._step = data, 0, step

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        out = self._data[self._pos : self._pos + min(n if n >= 0 else self._step, self._step)]
        self._pos += len(out)
        return out


FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.binary(max_size=600))
def test_any_bytes(data: bytes) -> None:
    check(data)


@FUZZ
@given(st.sampled_from(PCAP_HEADERS + PCAPNG_STARTS), st.binary(max_size=2000))
def test_valid_start_then_random_bytes(start: bytes, rest: bytes) -> None:
    check(start + rest)


@st.composite
def pcap_records(draw: st.DrawFn) -> bytes:
    """Records whose headers are mostly right (small caplen), sometimes wrong, sometimes
    cut: random bytes rarely get past the first record header, these do."""
    order = draw(st.sampled_from("<>"))
    magic = draw(st.sampled_from([0xA1B2C3D4, 0xA1B23C4D]))
    out = [struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, 65535, 1)]
    for _ in range(draw(st.integers(0, 6))):
        caplen = draw(st.one_of(st.integers(0, 64), st.integers(0, 2**32 - 1)))
        sec, frac = draw(st.integers(0, 2**32 - 1)), draw(st.integers(0, 2**32 - 1))
        out.append(struct.pack(order + "IIII", sec, frac, caplen, caplen))
        out.append(draw(st.binary(min_size=min(caplen, 64), max_size=min(caplen, 64))))
    data = b"".join(out)
    return data[: draw(st.integers(0, len(data)))] if draw(st.booleans()) else data


@st.composite
def pcapng_blocks(draw: st.DrawFn) -> bytes:
    """SHB and IDB, then blocks of every type the reader knows (and others), with bodies
    that are random, lengths that are sometimes wrong, and a cut at a random place."""
    order = draw(st.sampled_from("<>"))
    out = [_pcapng_start(order)]
    for _ in range(draw(st.integers(0, 6))):
        btype = draw(st.sampled_from([6, 6, 6, 2, 3, 0x0A, 0x0A, 1, 0x0A0D0D0A, 4, 5, 0x0BAD, 77]))
        body = draw(st.binary(max_size=80))
        if btype == 6 and draw(st.booleans()):
            caplen = draw(st.integers(0, 40))
            body = struct.pack(order + "IIIII", 0, 1, 2, caplen, caplen) + bytes(caplen)
        if btype == 2 and draw(st.booleans()):
            caplen = draw(st.integers(0, 40))
            body = struct.pack(order + "HHIIII", 0, 0, 1, 2, caplen, caplen) + bytes(caplen)
        if btype == 3 and draw(st.booleans()):
            body = struct.pack(order + "I", draw(st.integers(0, 100))) + bytes(40)
        if btype == 0x0A and draw(st.booleans()):
            secret = draw(st.binary(max_size=40))
            body = struct.pack(order + "II", 0x544C534B, len(secret)) + secret
        if btype == 1 and draw(st.booleans()):
            tsresol = draw(st.integers(0, 255))
            body = struct.pack(order + "H2xIHH", 1, 0, 9, 1) + bytes([tsresol, 0, 0, 0])
        blk = bytearray(_block(order, btype, body))
        if draw(st.integers(0, 7)) == 0:
            where = draw(st.sampled_from([4, len(blk) - 4]))
            struct.pack_into(order + "I", blk, where, draw(st.integers(0, 2**32 - 1)))
        out.append(bytes(blk))
    data = b"".join(out)
    return data[: draw(st.integers(0, len(data)))] if draw(st.booleans()) else data


@FUZZ
@given(pcap_records(), st.sampled_from([None, 3]))
def test_pcap_records(data: bytes, step: int | None) -> None:
    check(data, step)


@FUZZ
@given(pcapng_blocks(), st.sampled_from([None, 5]))
def test_pcapng_blocks(data: bytes, step: int | None) -> None:
    check(data, step)
