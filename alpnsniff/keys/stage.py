"""The decryption stage's entry: given a run's keys and a server's answer, the decryptor
that opens what hides the rest of that answer — or None, counted, when it cannot be had.

Asked once per ServerHello, only in a run that has keys (a key log or a pcapng's
Decryption Secrets Blocks), so a run without keys pays nothing. The flows feed the
decryptor the records (TCP) or datagrams (QUIC) that follow and read its messages.
"""

from __future__ import annotations

from collections import Counter

from ..errors import DissectError
from ..tls.hello import ServerHello
from .quic_handshake import QuicHandshakeDecryptor
from .store import KeyStore
from .tls12 import Tls12HandshakeDecryptor
from .tls13 import Tls13ServerFlightDecryptor

TLS13 = 0x0304
EXT_ENCRYPT_THEN_MAC = 22  # RFC 7366


def tls_decryptor(
    keys: KeyStore,
    client_random: bytes,
    client_extensions: tuple[int, ...],
    sh: ServerHello,
    stats: Counter[str],
) -> Tls13ServerFlightDecryptor | Tls12HandshakeDecryptor | None:
    """TLS over TCP: the server's flight (TLS 1.3: EncryptedExtensions) or, for NPN in
    TLS <= 1.2, the client's records after ChangeCipherSpec (NextProtocol)."""
    secrets = keys.secrets_for(client_random)
    if secrets is None:
        stats["keys_not_in_keylog"] += 1
        return None
    try:
        if sh.selected_version == TLS13:
            secret = secrets.server_handshake_traffic_secret
            if secret is None:
                stats["keys_no_server_handshake_secret"] += 1
                return None
            return Tls13ServerFlightDecryptor(sh.cipher_suite, secret)
        if sh.npn_protocols and secrets.master_secret is not None:
            etm = (
                EXT_ENCRYPT_THEN_MAC in client_extensions and EXT_ENCRYPT_THEN_MAC in sh.extensions
            )
            return Tls12HandshakeDecryptor(
                sh.cipher_suite,
                secrets.master_secret,
                client_random,
                sh.random,
                version=sh.selected_version,
                encrypt_then_mac=etm,
            )
    except DissectError as err:
        stats[f"keys_cannot_decrypt_{err.reason}"] += 1
    return None


def quic_decryptor(
    keys: KeyStore, client_random: bytes, version: int, cipher_suite: int, stats: Counter[str]
) -> QuicHandshakeDecryptor | None:
    """QUIC: the server's Handshake packets (EncryptedExtensions)."""
    secrets = keys.secrets_for(client_random)
    if secrets is None or secrets.server_handshake_traffic_secret is None:
        stats["keys_not_in_keylog"] += 1
        return None
    try:
        return QuicHandshakeDecryptor(
            version, cipher_suite, secrets.server_handshake_traffic_secret
        )
    except DissectError as err:
        stats[f"keys_cannot_decrypt_{err.reason}"] += 1
        return None
