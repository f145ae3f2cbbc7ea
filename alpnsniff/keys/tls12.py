"""TLS 1.2 (and 1.0/1.1 CBC) with a ``CLIENT_RANDOM`` master secret: the NPN choice.

With Next Protocol Negotiation (draft-agl-tls-nextprotoneg-04) the client tells its choice
in a NextProtocol handshake message (type 67) sent encrypted right after its
ChangeCipherSpec, before Finished. To read it: the key block from the master secret
(RFC 5246 §6.3: PRF(master_secret, "key expansion", server_random + client_random) with
the suite's PRF hash; RFC 2246/4346 §6.3: the MD5 ⊕ SHA-1 PRF for TLS 1.0/1.1), then the
client's records after its ChangeCipherSpec, sequence numbers from 0:

* AES-GCM (RFC 5288): 4-byte salt from the key block + the record's 8-byte explicit nonce;
* ChaCha20-Poly1305 (RFC 7905 §2): the 12-byte iv XOR the sequence number;
* AES-CBC with HMAC-SHA1/SHA256/SHA384 (RFC 5246 §6.2.3.2): explicit IV (TLS 1.1+) or the
  chained IV (TLS 1.0), MAC-then-encrypt with padding and MAC checked, or
  encrypt-then-MAC when the extension (RFC 7366, type 22) was negotiated.

Sans-I/O and error handling as :mod:`alpnsniff.keys.tls13`: ``feed_record`` returns events
and turns the first :class:`DissectError` into a final :class:`StreamError`.
The NextProtocol body is read by :func:`alpnsniff.tls.messages.parse_next_protocol`.
"""

from __future__ import annotations

import hmac as _hmac
from collections import Counter
from dataclasses import dataclass
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from alpnsniff.errors import DissectError, Malformed, Unsupported
from alpnsniff.keys.aead import DecryptFailed
from alpnsniff.keys.messages import HandshakeAssembler, RecordDecryptor
from alpnsniff.tls.events import AlertRecord, HandshakeMessage, StreamError
from alpnsniff.tls.stream import MAX_HANDSHAKE_MESSAGE

__all__ = [
    "HT_NEXT_PROTOCOL",
    "TLS12_SUITES",
    "Tls12Event",
    "Tls12HandshakeDecryptor",
    "Tls12Suite",
    "key_block",
    "prf",
]

LAYER: Final = "tls12.decrypt"

#: draft-agl-tls-nextprotoneg-04 §3: HandshakeType next_protocol.
HT_NEXT_PROTOCOL: Final = 67
#: RFC 5246 §6.2.3: TLSCiphertext.length MUST NOT exceed 2^14 + 2048.
MAX_CIPHERTEXT_LENGTH: Final = 2**14 + 2048
#: RFC 5246 §8.1, RFC 5246 §7.4.1.2: master secret and randoms.
MASTER_SECRET_LENGTH: Final = 48
RANDOM_LENGTH: Final = 32
AES_BLOCK: Final = 16
#: RFC 5288 §3 / RFC 7905 §2: the AEAD tag.
AEAD_TAG_LENGTH: Final = 16
#: RFC 5288 §3: GCMNonce.nonce_explicit.
GCM_EXPLICIT_NONCE_LENGTH: Final = 8

TLS10: Final = 0x0301
TLS11: Final = 0x0302
TLS12: Final = 0x0303

CT_CHANGE_CIPHER_SPEC: Final = 20
CT_ALERT: Final = 21
CT_HANDSHAKE: Final = 22

Tls12Event = HandshakeMessage | AlertRecord | StreamError

_MAC_LENGTHS: Final = {"sha1": 20, "sha256": 32, "sha384": 48}


@dataclass(frozen=True, slots=True, kw_only=True)
class Tls12Suite:
    """What decrypting a TLS ≤ 1.2 suite needs (RFC 5246 §6.3, Appendix C)."""

    code: int
    name: str
    #: "gcm", "chacha20" or "cbc".
    cipher: str
    key_length: int
    #: Bytes of the key block's client/server write IV.
    fixed_iv_length: int
    #: HMAC hash of a CBC suite ("sha1", "sha256", "sha384"); None for the AEAD suites.
    mac: str | None
    #: The TLS 1.2 PRF hash: "sha384" for the *_SHA384 suites, "sha256" otherwise.
    prf_hash: str

    @property
    def mac_length(self) -> int:
        return _MAC_LENGTHS[self.mac] if self.mac else 0

    @property
    def tls12_only(self) -> bool:
        """AEAD and SHA-256/384 MAC suites exist only from TLS 1.2 on (RFC 5246 App. A.5)."""
        return self.mac != "sha1"


def _gcm(code: int, name: str, key: int) -> Tls12Suite:
    return Tls12Suite(
        code=code,
        name=name,
        cipher="gcm",
        key_length=key,
        fixed_iv_length=4,
        mac=None,
        prf_hash="sha384" if name.endswith("SHA384") else "sha256",
    )


def _chacha(code: int, name: str) -> Tls12Suite:
    return Tls12Suite(
        code=code,
        name=name,
        cipher="chacha20",
        key_length=32,
        fixed_iv_length=12,
        mac=None,
        prf_hash="sha256",
    )


def _cbc(code: int, name: str, key: int, mac: str) -> Tls12Suite:
    return Tls12Suite(
        code=code,
        name=name,
        cipher="cbc",
        key_length=key,
        fixed_iv_length=AES_BLOCK,
        mac=mac,
        prf_hash="sha384" if mac == "sha384" else "sha256",
    )


#: The suites decrypted here: RSA, DHE and ECDHE key exchange with AES-GCM (RFC 5288,
#: RFC 5289), ChaCha20-Poly1305 (RFC 7905) and AES-CBC with HMAC (RFC 5246, RFC 4492,
#: RFC 5289). The key exchange does not matter: the key log gives the master secret.
TLS12_SUITES: Final[dict[int, Tls12Suite]] = {
    s.code: s
    for s in (
        _gcm(0x009C, "TLS_RSA_WITH_AES_128_GCM_SHA256", 16),
        _gcm(0x009D, "TLS_RSA_WITH_AES_256_GCM_SHA384", 32),
        _gcm(0x009E, "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256", 16),
        _gcm(0x009F, "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384", 32),
        _gcm(0xC02B, "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", 16),
        _gcm(0xC02C, "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", 32),
        _gcm(0xC02F, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", 16),
        _gcm(0xC030, "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", 32),
        _chacha(0xCCA8, "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"),
        _chacha(0xCCA9, "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"),
        _chacha(0xCCAA, "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256"),
        _cbc(0x002F, "TLS_RSA_WITH_AES_128_CBC_SHA", 16, "sha1"),
        _cbc(0x0035, "TLS_RSA_WITH_AES_256_CBC_SHA", 32, "sha1"),
        _cbc(0x0033, "TLS_DHE_RSA_WITH_AES_128_CBC_SHA", 16, "sha1"),
        _cbc(0x0039, "TLS_DHE_RSA_WITH_AES_256_CBC_SHA", 32, "sha1"),
        _cbc(0xC009, "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", 16, "sha1"),
        _cbc(0xC00A, "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", 32, "sha1"),
        _cbc(0xC013, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", 16, "sha1"),
        _cbc(0xC014, "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", 32, "sha1"),
        _cbc(0x003C, "TLS_RSA_WITH_AES_128_CBC_SHA256", 16, "sha256"),
        _cbc(0x003D, "TLS_RSA_WITH_AES_256_CBC_SHA256", 32, "sha256"),
        _cbc(0x0067, "TLS_DHE_RSA_WITH_AES_128_CBC_SHA256", 16, "sha256"),
        _cbc(0x006B, "TLS_DHE_RSA_WITH_AES_256_CBC_SHA256", 32, "sha256"),
        _cbc(0xC023, "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", 16, "sha256"),
        _cbc(0xC024, "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384", 32, "sha384"),
        _cbc(0xC027, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256", 16, "sha256"),
        _cbc(0xC028, "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384", 32, "sha384"),
    )
}


def _p_hash(hash_name: str, secret: bytes, seed: bytes, length: int) -> bytes:
    """RFC 5246 §5: P_hash(secret, seed) = HMAC(secret, A(1) + seed) + HMAC(secret, A(2) + seed)…"""
    out = b""
    a = seed
    while len(out) < length:
        a = _hmac.digest(secret, a, hash_name)
        out += _hmac.digest(secret, a + seed, hash_name)
    return out[:length]


def prf(
    version: int, hash_name: str, secret: bytes, label: bytes, seed: bytes, length: int
) -> bytes:
    """The TLS PRF: P_<hash> for TLS 1.2 (RFC 5246 §5); P_MD5 ⊕ P_SHA-1 over the two
    halves of the secret for TLS 1.0/1.1 (RFC 2246 §5, RFC 4346 §5)."""
    if version >= TLS12:
        return _p_hash(hash_name, secret, label + seed, length)
    half = (len(secret) + 1) // 2
    md5 = _p_hash("md5", secret[:half], label + seed, length)
    sha1 = _p_hash("sha1", secret[-half:], label + seed, length)
    return bytes(x ^ y for x, y in zip(md5, sha1, strict=True))


def key_block(
    suite: Tls12Suite,
    version: int,
    master_secret: bytes,
    client_random: bytes,
    server_random: bytes,
) -> bytes:
    """RFC 5246 §6.3: the key block (client MAC key, server MAC key, client key, server
    key, client IV, server IV), from "key expansion" and server_random + client_random."""
    length = 2 * (suite.mac_length + suite.key_length + suite.fixed_iv_length)
    return prf(
        version,
        suite.prf_hash,
        master_secret,
        b"key expansion",
        server_random + client_random,
        length,
    )


class Tls12HandshakeDecryptor(RecordDecryptor):
    """Opens one side's records after its ChangeCipherSpec and yields its messages.

    ``client=True`` (the default) uses the client write keys: NextProtocol, then Finished.
    Feed every record of that side from any point before its ChangeCipherSpec: plaintext
    handshake records before it are passed over (counted ``plaintext_before_ccs``), the
    ChangeCipherSpec turns decryption on with sequence number 0. Construction raises
    :class:`Unsupported` for a suite not in :data:`TLS12_SUITES` or a version it cannot
    use, :class:`Malformed` for a master secret or random of the wrong length.
    """

    __slots__ = (
        "_aead",
        "_assembler",
        "_cbc_iv",
        "_cipher_key",
        "_etm",
        "_fixed_iv",
        "_mac_key",
        "_seq",
        "_started",
        "error",
        "stats",
        "suite",
        "version",
    )

    def __init__(
        self,
        cipher_suite: int,
        master_secret: bytes,
        client_random: bytes,
        server_random: bytes,
        *,
        version: int = TLS12,
        client: bool = True,
        encrypt_then_mac: bool = False,
        max_message: int = MAX_HANDSHAKE_MESSAGE,
    ) -> None:
        suite = TLS12_SUITES.get(cipher_suite)
        if suite is None:
            raise Unsupported(
                f"TLS ≤ 1.2 cipher suite 0x{cipher_suite:04x} is not one this tool decrypts",
                layer=LAYER,
            )
        if not TLS10 <= version <= TLS12 or (suite.tls12_only and version != TLS12):
            raise Unsupported(f"{suite.name} with version 0x{version:04x}", layer=LAYER)
        if len(master_secret) != MASTER_SECRET_LENGTH:
            raise Malformed(f"master secret of {len(master_secret)} bytes", layer=LAYER)
        if len(client_random) != RANDOM_LENGTH or len(server_random) != RANDOM_LENGTH:
            raise Malformed("client and server randoms are 32 bytes", layer=LAYER)
        self.suite = suite
        self.version = version
        block = key_block(suite, version, master_secret, client_random, server_random)
        m, k, i = suite.mac_length, suite.key_length, suite.fixed_iv_length
        # client MAC, server MAC, client key, server key, client IV, server IV
        mac_at, key_at, iv_at = (
            (0, 2 * m, 2 * m + 2 * k) if client else (m, 2 * m + k, 2 * m + 2 * k + i)
        )
        self._mac_key = block[mac_at : mac_at + m]
        self._cipher_key = block[key_at : key_at + k]
        self._fixed_iv = block[iv_at : iv_at + i]
        self._cbc_iv = self._fixed_iv  # TLS 1.0 chains IVs from here (RFC 2246 §6.2.3.2)
        self._aead: AESGCM | ChaCha20Poly1305 | None = None
        if suite.cipher == "gcm":
            self._aead = AESGCM(self._cipher_key)
        elif suite.cipher == "chacha20":
            self._aead = ChaCha20Poly1305(self._cipher_key)
        self._etm = encrypt_then_mac and suite.cipher == "cbc"
        self._seq = 0
        self._started = False
        self.error: DissectError | None = None
        self.stats: Counter[str] = Counter()
        self._assembler = HandshakeAssembler(max_message, self.stats, LAYER)

    def __repr__(self) -> str:
        return (
            f"Tls12HandshakeDecryptor({self.suite.name}, version=0x{self.version:04x}, "
            f"records={self._seq}, done={self.done}, error={self.error is not None})"
        )

    def _record(self, ct: int, header: bytes, payload: bytes, events: list[Tls12Event]) -> None:
        if not self._started:
            if ct == CT_CHANGE_CIPHER_SPEC:
                if payload != b"\x01":
                    raise Malformed(f"ChangeCipherSpec of {len(payload)} bytes", layer=LAYER)
                self._started = True
            elif ct in (CT_HANDSHAKE, CT_ALERT):
                self.stats["plaintext_before_ccs"] += 1
            else:
                raise Malformed(f"record type {ct} before the ChangeCipherSpec", layer=LAYER)
            return
        if len(header) != 5 or (header[3] << 8) | header[4] != len(payload):
            raise Malformed("record header does not match the record body", layer=LAYER)
        if len(payload) > MAX_CIPHERTEXT_LENGTH:
            raise Malformed(
                f"record of {len(payload)} bytes (RFC 5246 §6.2.3: at most {MAX_CIPHERTEXT_LENGTH})",
                layer=LAYER,
            )
        seq = self._seq
        content = self._decrypt(ct, header, payload, seq)
        self._seq = seq + 1
        self.stats["records"] += 1
        version = (header[1] << 8) | header[2]
        if ct == CT_HANDSHAKE:
            if not content:
                raise Malformed(f"record {seq}: empty handshake record", layer=LAYER)
            self._assembler.add(content, version, f"record {seq}", events.append)
        elif ct == CT_ALERT:
            if self._assembler.in_message or len(content) != 2:
                raise Malformed(f"record {seq}: alert of {len(content)} bytes", layer=LAYER)
            events.append(AlertRecord(content[0], content[1]))
        else:
            raise Malformed(f"record {seq}: type {ct} before Finished", layer=LAYER)

    def _decrypt(self, ct: int, header: bytes, payload: bytes, seq: int) -> bytes:
        """Open one record (RFC 5246 §6.2.3); raises DecryptFailed when it does not verify."""
        suite = self.suite
        aad_head = seq.to_bytes(8, "big") + header[:3]  # seq_num, type, version
        if self._aead is not None:
            if suite.cipher == "gcm":
                if len(payload) < GCM_EXPLICIT_NONCE_LENGTH + AEAD_TAG_LENGTH:
                    raise Malformed(
                        f"record {seq}: GCM record of {len(payload)} bytes", layer=LAYER
                    )
                nonce = self._fixed_iv + payload[:GCM_EXPLICIT_NONCE_LENGTH]
                sealed = payload[GCM_EXPLICIT_NONCE_LENGTH:]
            else:
                if len(payload) < AEAD_TAG_LENGTH:
                    raise Malformed(f"record {seq}: record of {len(payload)} bytes", layer=LAYER)
                nonce = (int.from_bytes(self._fixed_iv, "big") ^ seq).to_bytes(12, "big")
                sealed = payload
            aad = aad_head + (len(sealed) - AEAD_TAG_LENGTH).to_bytes(2, "big")
            try:
                return self._aead.decrypt(nonce, sealed, aad)
            except InvalidTag:
                raise self._failed(seq, "tag does not verify") from None
        return self._decrypt_cbc(payload, seq, aad_head)

    def _decrypt_cbc(self, payload: bytes, seq: int, aad_head: bytes) -> bytes:
        mac_len = self.suite.mac_length
        mac_name = self.suite.mac
        assert mac_name is not None
        explicit_iv = self.version >= TLS11
        body = payload
        if self._etm:
            # RFC 7366 §3: MAC(seq, type, version, length, IV + ciphertext) after the ciphertext.
            if len(payload) < mac_len:
                raise Malformed(
                    f"record {seq}: {len(payload)} bytes, shorter than its MAC", layer=LAYER
                )
            body, tag = payload[:-mac_len], payload[-mac_len:]
            mac_in = aad_head + len(body).to_bytes(2, "big") + body
            if not _hmac.compare_digest(_hmac.digest(self._mac_key, mac_in, mac_name), tag):
                raise self._failed(seq, "encrypt-then-MAC does not verify")
        if explicit_iv:
            iv, ciphertext = body[:AES_BLOCK], body[AES_BLOCK:]
        else:
            iv, ciphertext = self._cbc_iv, body
        if not ciphertext or len(ciphertext) % AES_BLOCK:
            raise Malformed(
                f"record {seq}: CBC ciphertext of {len(ciphertext)} bytes, not whole blocks",
                layer=LAYER,
            )
        if not explicit_iv:
            self._cbc_iv = ciphertext[-AES_BLOCK:]
        decryptor = Cipher(algorithms.AES(self._cipher_key), modes.CBC(iv)).decryptor()
        plain = decryptor.update(ciphertext) + decryptor.finalize()
        pad = plain[-1]
        if pad + 1 > len(plain) or plain[-pad - 1 : -1].count(pad) != pad:
            raise self._failed(seq, "CBC padding is wrong")
        plain = plain[: -pad - 1]
        if self._etm:
            return plain
        if len(plain) < mac_len:
            raise self._failed(seq, "CBC record shorter than its MAC")
        content, tag = plain[: len(plain) - mac_len], plain[len(plain) - mac_len :]
        mac_in = aad_head + len(content).to_bytes(2, "big") + content
        if not _hmac.compare_digest(_hmac.digest(self._mac_key, mac_in, mac_name), tag):
            raise self._failed(seq, "MAC does not verify")
        return content

    def _failed(self, seq: int, what: str) -> DecryptFailed:
        return DecryptFailed(
            f"record {seq}: {self.suite.name} {what} (wrong key log entry, or damaged bytes)",
            layer=LAYER,
        )
