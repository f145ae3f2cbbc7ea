"""CaptureSource as a Source: what it says about in-band secrets, by format, any compression."""

from __future__ import annotations

import gzip
import io
import struct

import pytest
from capture_testlib import block, shb

from alpnsniff.capture import CaptureSource, Source, open_capture

PCAP = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)
DSB = block("<", 0x0A, struct.pack("<II", 0x544C534B, 6) + b"keys-1\0\0")
PCAPNG = shb("<") + block("<", 1, struct.pack("<H2xI", 1, 0)) + DSB


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize(("data", "carries"), [(PCAP, False), (PCAPNG, True)])
def test_carries_secrets(data: bytes, carries: bool, compress: bool) -> None:
    raw = gzip.compress(data) if compress else data
    with open_capture(io.BytesIO(raw)) as src:
        assert isinstance(src, CaptureSource) and isinstance(src, Source)
        assert src.carries_secrets is carries
        assert src.secrets == []  # filled while the packets are read
        assert list(src.packets()) == []
        assert src.secrets == ([(0x544C534B, b"keys-1")] if carries else [])
