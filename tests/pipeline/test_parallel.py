"""Sharding flows over processes gives exactly the records and counts of one process."""

from __future__ import annotations

from collections import Counter

import pytest

from alpnsniff.parallel import analyze_parallel, auto_jobs
from alpnsniff.pipeline import analyze_file
from tests.conftest import shared_file


@pytest.mark.parametrize(
    "name",
    [
        "realcap/ipv6_openssl_tls12_and_aioquic_h3.pcap",
        "realcap/nginx_curl_noalpn_and_http11.pcap",
        "corpus/pcaps/ipfixprobe__tls.pcap",
        "corpus/pcaps/ja4__tls-handshake.pcapng",
        "corpus/pcaps/mercury__dns_packet.capture2.pcap",
    ],
)
@pytest.mark.parametrize("jobs", [2, 3])
def test_sharded_equals_single(name: str, jobs: int) -> None:
    path = shared_file(*name.split("/"))
    single = analyze_file(path)
    sharded = analyze_parallel(path, jobs)
    assert sharded.handshakes == single.handshakes
    assert len(single.handshakes) > 0
    # Idle sweeps run when a shard's own packets reach the slow path, so which idle
    # connection is evicted when (and re-created later) may differ: those counts are left out,
    # and with them the loss estimate's (a re-created flow has seen one direction less).
    timing = (
        "loss_",
        "tcp_evicted",
        "quic_evicted",
        "tcp_connections",
        "quic_connections",
        "tcp_still_probing",
    )
    ignored = ("parallel_jobs", "peak_rss_kb_worker")

    def comparable(stats: Counter[str]) -> Counter[str]:
        return +Counter(
            {k: v for k, v in stats.items() if not k.startswith(timing) and k not in ignored}
        )

    assert comparable(sharded.stats) == comparable(single.stats)


def test_auto_jobs_is_one_for_small_files_and_pipes() -> None:
    assert auto_jobs("-") == 1
    assert auto_jobs(shared_file("realcap", "openssl_tls12_alpn_h2.pcap")) == 1
    assert auto_jobs("/nonexistent") == 1
