"""Where a run's TLS secrets come from: key log files and the capture's in-band secrets.

The pipeline asks only when a ServerHello arrives (:meth:`KeyStore.secrets_for`), so a run
without keys pays nothing per packet, and a secret the capture carries in-band (a pcapng
Decryption Secrets Block) is taken in as soon as the capture layer has read it (blocks
come before the packets they serve). Which captures can carry secrets is the capture
source's to say (:attr:`~alpnsniff.capture.Source.carries_secrets`), not a format name's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .keylog import KeyLog, SessionSecrets

if TYPE_CHECKING:
    from alpnsniff.capture import Source

__all__ = ["KeyStore"]


class KeyStore:
    """A :class:`KeyLog` plus the capture's DSB list, read lazily. Never prints a secret."""

    __slots__ = ("_dsb", "_dsb_read", "found", "keylog", "lookups")

    def __init__(self, keylog: KeyLog, dsb: list[tuple[int, bytes]] | None = None) -> None:
        self.keylog = keylog
        self._dsb = dsb  # the capture source's list, appended to while reading
        self._dsb_read = 0
        self.lookups = 0
        self.found = 0

    @classmethod
    def for_capture(cls, keylog: KeyLog | None, source: Source) -> KeyStore | None:
        """The keys a capture's run uses: None (no cost at all) without a key log from a
        source that cannot carry secrets in-band (a pcap); otherwise a store that takes in
        ``source.secrets`` (a pcapng's DSBs) as they are read."""
        if keylog is None and not source.carries_secrets:
            return None
        return cls(keylog if keylog is not None else KeyLog(), source.secrets)

    def take_in_band(self) -> None:
        """Take in the source's secrets read so far (done before each look-up, and at the end
        of a run, so the key log's counts cover the whole capture whatever was looked up)."""
        dsb = self._dsb
        if dsb is not None and self._dsb_read < len(dsb):
            for secrets_type, data in dsb[self._dsb_read :]:
                self.keylog.add_dsb(secrets_type, data)
            self._dsb_read = len(dsb)

    def secrets_for(self, client_random: bytes) -> SessionSecrets | None:
        self.take_in_band()
        self.lookups += 1
        secrets = self.keylog.secrets_for(client_random)
        if secrets is not None:
            self.found += 1
        return secrets

    def __repr__(self) -> str:
        return f"KeyStore({self.keylog!r}, lookups={self.lookups}, found={self.found})"
