"""Time PacketDecoder.decode per packet kind on real frames (not a test: run it by hand).

    python tests/net/bench_decode.py

Frames come from ../shared (realcap and corpus); each kind is timed with timeit, best of 7,
in CPU time (the machine may be shared), and printed in microseconds per packet.
"""

from __future__ import annotations

import sys
import time
import timeit
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from netframes import CORPUS, REALCAP, read_frames

from alpnsniff.net.decode import PacketDecoder
from alpnsniff.net.segment import Segment

Decode = Callable[[int, bytes, int], "Segment | str"]
KINDS = {
    "ethernet ipv4 tcp": (REALCAP / "chromium_nginx_h2_veth1500.pcap", 1),
    "ethernet ipv4 udp": (REALCAP / "chromium_aioquic_h3_veth1500.pcap", 1),
    "ethernet ipv6 tcp+udp": (REALCAP / "ipv6_openssl_tls12_and_aioquic_h3.pcap", 1),
    "802.1Q ipv4 tcp": (CORPUS / "arkime__mysql-tls.pcap", 1),
    "linux sll ipv4 tcp": (CORPUS / "nDPI__tls_heur__trojan-tcp-tls.pcapng", 113),
    "raw ipv4 tcp": (CORPUS / "nDPI__bets.pcap", 101),
    "null ipv4 tcp (general path)": (CORPUS / "illustrated-tls13__archive_capture.pcap", 0),
    "qinq gtp-u ipv4 tcp (general)": (CORPUS / "nDPI__tls_invalid_reads.pcapng", 1),
}


def main() -> None:
    decoder = PacketDecoder()
    for kind, (path, linktype) in KINDS.items():
        frames = [(lt, f) for lt, f in read_frames(path) if lt == linktype]
        frames = [x for x in frames if isinstance(decoder.decode(x[0], x[1], 0), Segment)]
        if not frames:
            print(f"{kind:32s} (no frames)")
            continue

        def run(frames: list[tuple[int, bytes]] = frames, decode: Decode = decoder.decode) -> None:
            for lt, frame in frames:
                decode(lt, frame, 0)

        rounds = max(1, 20000 // len(frames))
        best = min(timeit.repeat(run, number=rounds, repeat=7, timer=time.process_time))
        print(f"{kind:32s} {len(frames):5d} frames  {best / rounds / len(frames) * 1e6:.3f} us")


if __name__ == "__main__":
    main()
