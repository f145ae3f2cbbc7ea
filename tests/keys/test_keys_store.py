"""The run's key store: which capture sources get one, and in-band secrets taken in lazily."""

from __future__ import annotations

from collections.abc import Iterator
from types import TracebackType

from keyscap import CAPTURES

from alpnsniff.capture import CaptureStats, PacketBatch, Source, open_capture
from alpnsniff.keys.keylog import DSB_TLS_KEY_LOG, KeyLog
from alpnsniff.keys.store import KeyStore

CR = bytes(range(32))
LINE = f"CLIENT_RANDOM {CR.hex()} {'ab' * 48}\n".encode()


class FakeSource:
    """A Source that is not a file: a stand-in for a live interface, or a pcapng."""

    def __init__(self, carries_secrets: bool) -> None:
        self.name = "fake"
        self.stats = CaptureStats()
        self.secrets: list[tuple[int, bytes]] = []
        self.carries_secrets = carries_secrets

    def batches(self) -> Iterator[PacketBatch]:
        return iter(())

    def packets(self) -> Iterator[tuple[int, int, bytes]]:
        return iter(())

    def close(self) -> None:
        pass

    def __enter__(self) -> FakeSource:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def test_no_key_log_and_no_in_band_secrets_means_no_store() -> None:
    source = FakeSource(carries_secrets=False)
    assert isinstance(source, Source)
    assert KeyStore.for_capture(None, source) is None


def test_a_key_log_gives_a_store_whatever_the_source() -> None:
    log = KeyLog()
    log.add_text(LINE)
    store = KeyStore.for_capture(log, FakeSource(carries_secrets=False))
    assert store is not None and store.keylog is log
    secrets = store.secrets_for(CR)
    assert secrets is not None and secrets.master_secret == b"\xab" * 48
    assert (store.lookups, store.found) == (1, 1)


def test_in_band_secrets_are_taken_in_when_asked_for() -> None:
    source = FakeSource(carries_secrets=True)
    store = KeyStore.for_capture(None, source)
    assert store is not None
    assert store.secrets_for(CR) is None
    source.secrets.append((DSB_TLS_KEY_LOG, LINE))  # the reader appends while reading
    secrets = store.secrets_for(CR)
    assert secrets is not None and secrets.master_secret == b"\xab" * 48
    assert store.secrets_for(CR) is not None
    assert store.keylog.stats["dsb_blocks"] == 1  # each block read once
    assert (store.lookups, store.found) == (3, 2)
    assert "ab" * 4 not in repr(store)


def test_capture_files() -> None:
    with open_capture(CAPTURES / "aioquic_h3_v1.pcap") as pcap:
        assert isinstance(pcap, Source) and not pcap.carries_secrets
        assert KeyStore.for_capture(None, pcap) is None
        log = KeyLog()
        log.load(CAPTURES / "aioquic_h3_v1.keys")
        assert KeyStore.for_capture(log, pcap) is not None
    with open_capture(CAPTURES / "aioquic_h3_v1_dsb.pcapng") as pcapng:
        assert isinstance(pcapng, Source) and pcapng.carries_secrets
        store = KeyStore.for_capture(None, pcapng)
        assert store is not None and len(store.keylog) == 0
        for _packet in pcapng.packets():
            pass
        assert pcapng.secrets
        store.secrets_for(CR)
        assert len(store.keylog) > 0  # the DSBs read with the packets
