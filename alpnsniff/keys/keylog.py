"""The NSS key log format (SSLKEYLOGFILE), from a file, text, or a pcapng DSB.

What curl, Firefox, Chromium, CPython's ``ssl``, ``openssl s_client -keylogfile``,
GnuTLS and aioquic write: one secret per line, ``LABEL <client_random hex> <secret hex>``,
with ``#`` comments and blank lines. The labels read here (NSS's "Key Log Format" page,
draft-ietf-tls-keylogfile):

* ``CLIENT_RANDOM``: the TLS ≤ 1.2 master secret (48 bytes);
* TLS 1.3: ``CLIENT_HANDSHAKE_TRAFFIC_SECRET``, ``SERVER_HANDSHAKE_TRAFFIC_SECRET``,
  ``CLIENT_TRAFFIC_SECRET_0``, ``SERVER_TRAFFIC_SECRET_0``, ``EXPORTER_SECRET``,
  ``CLIENT_EARLY_TRAFFIC_SECRET``, ``EARLY_EXPORTER_SECRET`` (one hash long: 32 or 48 bytes).

Anything else (``RSA``, ``PMS_CLIENT_RANDOM``, ECH labels, typos) is an unknown label:
counted, skipped. A line that does not fit (wrong field count, bad hex, wrong lengths) is
malformed: counted with its line number, never fatal.

Secrets never leave this module in text: ``repr``, ``str``, the error list and every
exception name line numbers, labels and lengths only.
"""

from __future__ import annotations

import contextlib
import os
from collections import Counter
from dataclasses import dataclass, fields
from typing import Final

from alpnsniff.errors import CaptureError

__all__ = [
    "DSB_TLS_KEY_LOG",
    "LABELS",
    "MAX_ERROR_MESSAGES",
    "MAX_LINE_LENGTH",
    "MAX_SESSIONS",
    "KeyLog",
    "KeyLogError",
    "SessionSecrets",
]

#: pcapng Decryption Secrets Block type "TLSK": the block holds NSS key log text
#: (pcapng spec §4.7, the secrets types registry).
DSB_TLS_KEY_LOG: Final = 0x544C534B

#: A valid line is at most ``EARLY_EXPORTER_SECRET`` (21) + 64 + 96 hex digits + 2 spaces
#: (~185 characters); allowing a few times that keeps odd whitespace legal while a
#: multi-megabyte "line" of garbage is refused without being split or stored.
MAX_LINE_LENGTH: Final = 1024

#: Bytes read at a time while stepping over an overlong line.
_SKIP_CHUNK: Final = 64 * 1024
# The most a followed key log is read at one look (the rest at the next).
_FOLLOW_CHUNK: Final = 1024 * 1024

#: Client randoms (sessions) kept. Each costs ~400 bytes with its secrets, so the cap bounds
#: a key log's memory near 400 MB; a browser's key log of a busy week is ~100,000 sessions.
#: Sessions past it are counted (``sessions_over_limit``), not stored.
MAX_SESSIONS = 1_000_000  # not Final: the tests lower it

#: Error texts kept (every malformed line is counted; only the first ones are described).
MAX_ERROR_MESSAGES: Final = 100

#: RFC 8446 §4.1.2 / RFC 5246 §7.4.1.2: the ClientHello random is 32 bytes.
CLIENT_RANDOM_LENGTH: Final = 32
#: RFC 5246 §8.1: the master secret is 48 bytes.
MASTER_SECRET_LENGTH: Final = 48
#: TLS 1.3 secrets are one hash long: SHA-256 or SHA-384 (RFC 8446 Appendix B.4).
TLS13_SECRET_LENGTHS: Final = (32, 48)

#: Key log label → SessionSecrets field.
LABELS: Final[dict[str, str]] = {
    "CLIENT_RANDOM": "master_secret",
    "CLIENT_EARLY_TRAFFIC_SECRET": "client_early_traffic_secret",
    "EARLY_EXPORTER_SECRET": "early_exporter_secret",
    "CLIENT_HANDSHAKE_TRAFFIC_SECRET": "client_handshake_traffic_secret",
    "SERVER_HANDSHAKE_TRAFFIC_SECRET": "server_handshake_traffic_secret",
    "CLIENT_TRAFFIC_SECRET_0": "client_traffic_secret_0",
    "SERVER_TRAFFIC_SECRET_0": "server_traffic_secret_0",
    "EXPORTER_SECRET": "exporter_secret",
}
_LABEL_OF: Final = {v: k for k, v in LABELS.items()}
_HEX: Final = frozenset("0123456789abcdefABCDEF")


class KeyLogError(CaptureError):
    """A key log file that cannot be read at all (missing, unreadable, a directory)."""


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class SessionSecrets:
    """The secrets logged for one client random; None where the log has no such line."""

    client_random: bytes
    master_secret: bytes | None = None
    client_early_traffic_secret: bytes | None = None
    early_exporter_secret: bytes | None = None
    client_handshake_traffic_secret: bytes | None = None
    server_handshake_traffic_secret: bytes | None = None
    client_traffic_secret_0: bytes | None = None
    server_traffic_secret_0: bytes | None = None
    exporter_secret: bytes | None = None

    @property
    def labels(self) -> tuple[str, ...]:
        """The key log labels present, in :data:`LABELS` order."""
        return tuple(
            _LABEL_OF[f.name]
            for f in fields(self)
            if f.name != "client_random" and getattr(self, f.name) is not None
        )

    def __repr__(self) -> str:
        # The client random is public (it travels in the ClientHello); secrets are not.
        return f"SessionSecrets(client_random={self.client_random.hex()}, labels={self.labels})"

    def __str__(self) -> str:
        return self.__repr__()


class KeyLog:
    """Secrets by client random, from any number of key logs and DSBs.

    ``stats`` counts what was read: ``lines``, ``entries`` (secrets stored), ``comments``,
    ``blank``, ``unknown_label``, ``malformed``, ``duplicate`` (the same secret again),
    ``conflict`` (another value for a label already known: the later one wins, as in
    Wireshark), ``sessions_over_limit``, ``dsb_blocks``, ``dsb_unsupported``.
    ``errors`` describes the first :data:`MAX_ERROR_MESSAGES` malformed lines.
    """

    __slots__ = ("_counts", "_followed", "_sessions", "errors")

    def __init__(self) -> None:
        self._sessions: dict[bytes, dict[str, bytes]] = {}
        self._counts: Counter[str] = Counter()
        self.errors: list[str] = []
        # key logs still being written (a live capture's): path -> [bytes read, lines read]
        self._followed: dict[str, list[int]] = {}

    # -- reading --------------------------------------------------------------------

    def load(self, path: str | os.PathLike[str]) -> int:
        """Read a key log file; return the number of secrets it added.

        Raises :class:`KeyLogError` when the file cannot be opened or read.
        """
        name = os.fspath(path)
        try:
            with open(name, "rb") as fh:
                self._counts["files"] += 1
                added = 0
                number = 0
                while raw := fh.readline(MAX_LINE_LENGTH + 2):
                    number += 1
                    if not raw.endswith(b"\n") and len(raw) > MAX_LINE_LENGTH + 1:
                        # an overlong line: step over the rest of it without holding it
                        length = len(raw)
                        while raw and not raw.endswith(b"\n"):
                            raw = fh.readline(_SKIP_CHUNK)
                            length += len(raw)
                        self._counts["lines"] += 1
                        self._too_long(name, number, length - raw.endswith(b"\n"))
                        continue
                    added += self._line(raw, number, name)
                return added
        except OSError as err:
            raise KeyLogError(f"cannot read key log {name}: {err.strerror or err}") from None

    def follow(self, path: str | os.PathLike[str]) -> int:
        """Read a key log that is still being written (an SSLKEYLOGFILE during a live
        capture): what it holds now, and with each :meth:`read_more` what was appended
        since, complete lines only. The file stays open (a run that gives root up can still
        read it; positioned reads, so forked processes share no offset); one that got
        shorter was started afresh, one replaced under its name (a new inode) is opened
        again when it can be: both are read from their start. Raises :class:`KeyLogError`
        when it cannot be opened now."""
        name = os.fspath(path)
        try:
            fd = os.open(name, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as err:
            raise KeyLogError(f"cannot read key log {name}: {err.strerror or err}") from None
        self._followed[name] = [0, 0, fd]
        self._counts["files"] += 1
        return self._read_on(name)

    def read_more(self) -> int:
        """What the followed key logs gained since the last look; the secrets added."""
        return sum(self._read_on(name) for name in self._followed)

    def _read_on(self, name: str) -> int:
        place = self._followed[name]
        offset, _lines, fd = place
        try:
            st = os.fstat(fd)
            with contextlib.suppress(OSError):  # (gone, or not ours to open: keep this one)
                now = os.stat(name)
                # (ours unlinked: the name is another file's, even with our inode number)
                if st.st_nlink == 0 or (now.st_ino, now.st_dev) != (st.st_ino, st.st_dev):
                    fresh = os.open(name, os.O_RDONLY | os.O_CLOEXEC)
                    os.close(fd)
                    place[2] = fd = fresh
                    st = os.fstat(fd)
                    offset = place[0] = place[1] = 0
            if st.st_size < offset:  # truncated: from the start again
                offset = place[0] = place[1] = 0
            if st.st_size == offset:
                return 0
            data = os.pread(fd, min(st.st_size - offset, _FOLLOW_CHUNK), offset)
        except OSError:
            return 0  # (tried again at the next look)
        end = data.rfind(b"\n") + 1
        if not end:
            if len(data) <= MAX_LINE_LENGTH:
                return 0  # a line still being written
            end = len(data)  # an overlong line: counted as one, and stepped over
        added = 0
        for raw in data[:end].splitlines():
            place[1] += 1
            added += self._line(raw, place[1], name)
        place[0] += end
        return added

    def add_text(self, text: str | bytes, source: str = "text") -> int:
        """Read key log lines from a string; return the number of secrets added."""
        data = text.encode("utf-8", "replace") if isinstance(text, str) else text
        added = 0
        for number, raw in enumerate(data.splitlines(), 1):
            added += self._line(raw, number, source)
        return added

    def add_dsb(self, secrets_type: int, data: bytes) -> int:
        """A pcapng Decryption Secrets Block: "TLSK" is key log text; others are counted."""
        self._counts["dsb_blocks"] += 1
        if secrets_type != DSB_TLS_KEY_LOG:
            self._counts["dsb_unsupported"] += 1
            return 0
        return self.add_text(data, source=f"DSB {self._counts['dsb_blocks']}")

    def _malformed(self, source: str, number: int, what: str) -> int:
        self._counts["malformed"] += 1
        if len(self.errors) < MAX_ERROR_MESSAGES:
            self.errors.append(f"{source} line {number}: {what}")
        return 0

    def _too_long(self, source: str, number: int, length: int) -> int:
        return self._malformed(source, number, f"line of {length} bytes (limit {MAX_LINE_LENGTH})")

    def _line(self, raw: bytes, number: int, source: str) -> int:
        """One line (its end of line may still be on it); returns 1 for a new secret."""
        counts = self._counts
        counts["lines"] += 1
        raw = raw.rstrip(b"\r\n")
        if len(raw) > MAX_LINE_LENGTH:
            return self._too_long(source, number, len(raw))
        line = raw.decode("ascii", "replace").strip()
        if not line:
            counts["blank"] += 1
            return 0
        if line.startswith("#"):
            counts["comments"] += 1
            return 0
        parts = line.split()
        label = parts[0]
        field = LABELS.get(label)
        if field is None:
            counts["unknown_label"] += 1
            return 0
        if len(parts) != 3:
            return self._malformed(source, number, f"{label}: {len(parts)} fields, expected 3")
        cr_hex, secret_hex = parts[1], parts[2]
        if not _HEX.issuperset(cr_hex) or len(cr_hex) & 1:
            return self._malformed(source, number, f"{label}: client random is not hex")
        if not _HEX.issuperset(secret_hex) or len(secret_hex) & 1:
            return self._malformed(source, number, f"{label}: secret is not hex")
        if len(cr_hex) != 2 * CLIENT_RANDOM_LENGTH:
            return self._malformed(
                source,
                number,
                f"{label}: client random of {len(cr_hex) // 2} bytes, expected {CLIENT_RANDOM_LENGTH}",
            )
        n = len(secret_hex) // 2
        if label == "CLIENT_RANDOM":
            if n != MASTER_SECRET_LENGTH:
                return self._malformed(
                    source, number, f"{label}: secret of {n} bytes, expected {MASTER_SECRET_LENGTH}"
                )
        elif n not in TLS13_SECRET_LENGTHS:
            return self._malformed(
                source, number, f"{label}: secret of {n} bytes, expected 32 or 48"
            )
        return self._store(bytes.fromhex(cr_hex), field, bytes.fromhex(secret_hex))

    def _store(self, client_random: bytes, field: str, secret: bytes) -> int:
        counts = self._counts
        session = self._sessions.get(client_random)
        if session is None:
            if len(self._sessions) >= MAX_SESSIONS:
                counts["sessions_over_limit"] += 1
                return 0
            session = self._sessions[client_random] = {}
        old = session.get(field)
        session[field] = secret
        if old is None:
            counts["entries"] += 1
            return 1
        counts["duplicate" if old == secret else "conflict"] += 1
        return 0

    # -- looking up -----------------------------------------------------------------

    def secrets_for(self, client_random: bytes) -> SessionSecrets | None:
        """The secrets logged for the ClientHello with this random, or None."""
        session = self._sessions.get(client_random)
        if session is None:
            return None
        return SessionSecrets(client_random=client_random, **session)

    def __len__(self) -> int:
        """Sessions (client randoms) with at least one secret."""
        return len(self._sessions)

    def __contains__(self, client_random: object) -> bool:
        return client_random in self._sessions

    @property
    def stats(self) -> dict[str, int]:
        """Counts of what was read (see the class docstring); a fresh dict."""
        out = dict(self._counts)
        out["sessions"] = len(self._sessions)
        return out

    def __repr__(self) -> str:
        c = self._counts
        return (
            f"KeyLog(sessions={len(self._sessions)}, entries={c['entries']}, "
            f"malformed={c['malformed']}, unknown_label={c['unknown_label']})"
        )

    def __str__(self) -> str:
        return self.__repr__()
