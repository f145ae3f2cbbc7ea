"""A TLS 1.3 server flight that decrypts: the benchmark generator's sealed handshake records.

After its ServerHello (cipher suite TLS_AES_128_GCM_SHA256) and the compatibility
ChangeCipherSpec, the server sends four records protected with its handshake traffic keys
(RFC 8446 §7.3: key = HKDF-Expand-Label(secret, "key", "", 16), iv = ...("iv", "", 12);
§5.2-5.3: nonce = iv XOR the record sequence number, AAD = the 5-byte record header, inner
plaintext = the handshake message, content type 22, zero padding):

    seq 0  EncryptedExtensions (ALPN when the server selects a protocol)
    seq 1  Certificate (nginx's self-signed P-256 certificate from bench/templates.py),
           padded with zeros so that the flight keeps the size the old random bytes had
    seq 2  CertificateVerify (ecdsa_secp256r1_sha256, random r and s)
    seq 3  Finished (32 random bytes: nobody checks it without the transcript)

``keylog_line`` gives the NSS key log line that lets tshark and alpnsniff open them.
Independent of alpnsniff (only ``cryptography`` and the standard library).
"""

from __future__ import annotations

import hashlib
import hmac
import random
import struct

import templates
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from gen_hello import EXT_ALPN, encode_alpn, handshake

TLS_AES_128_GCM_SHA256 = 0x1301
SECRET_LEN = 32  # SHA-256 output: the traffic secret of TLS_AES_128_GCM_SHA256
KEY_LEN = 16
IV_LEN = 12
TAG_LEN = 16
RECORD_HEADER_LEN = 5
CT_HANDSHAKE = 22
CT_APPLICATION_DATA = 23
HT_ENCRYPTED_EXTENSIONS = 8
HT_CERTIFICATE = 11
HT_CERTIFICATE_VERIFY = 15
HT_FINISHED = 20
SIG_ECDSA_SECP256R1_SHA256 = 0x0403
# RFC 8446 §5.4: TLSInnerPlaintext may not exceed 2^14 + 1 bytes.
MAX_INNER_PLAINTEXT = 2**14 + 1
# Bytes one sealed record adds around its handshake message: header, content type, tag.
SEALED_OVERHEAD = RECORD_HEADER_LEN + 1 + TAG_LEN


def hkdf_expand_label(secret: bytes, label: str, context: bytes, length: int) -> bytes:
    """RFC 8446 §7.1 HKDF-Expand-Label over SHA-256 (RFC 5869 §2.3 HKDF-Expand)."""
    full = b"tls13 " + label.encode()
    info = struct.pack("!HB", length, len(full)) + full + bytes([len(context)]) + context
    out, block, n = b"", b"", 1
    while len(out) < length:
        block = hmac.digest(secret, block + info + bytes([n]), hashlib.sha256)
        out += block
        n += 1
    return out[:length]


def server_handshake_key_iv(secret: bytes) -> tuple[bytes, bytes]:
    """(key, iv) of TLS_AES_128_GCM_SHA256 from a SERVER_HANDSHAKE_TRAFFIC_SECRET."""
    return (
        hkdf_expand_label(secret, "key", b"", KEY_LEN),
        hkdf_expand_label(secret, "iv", b"", IV_LEN),
    )


def keylog_line(client_random: bytes, secret: bytes) -> str:
    """One NSS key log line (https://nss-crypto.org/reference/security/nss/legacy/key_log_format)."""
    return f"SERVER_HANDSHAKE_TRAFFIC_SECRET {client_random.hex()} {secret.hex()}\n"


def _template_certificate() -> bytes:
    """The DER certificate of nginx's TLS 1.2 Certificate message in the templates."""
    tail = templates.SERVER_TLS12_TAIL
    if tail[0] != HT_CERTIFICATE:
        raise ValueError("SERVER_TLS12_TAIL does not start with a Certificate message")
    # body: certificate_list<3> = one ASN.1Cert<3>
    cert_len = int.from_bytes(tail[7:10], "big")
    return tail[10 : 10 + cert_len]


CERT_DER = _template_certificate()
# RFC 8446 §4.4.2: context<1> = empty, then one CertificateEntry: cert_data<3>, extensions<2>.
_ENTRY = len(CERT_DER).to_bytes(3, "big") + CERT_DER + b"\x00\x00"
CERTIFICATE = handshake(HT_CERTIFICATE, b"\x00" + len(_ENTRY).to_bytes(3, "big") + _ENTRY)


def encrypted_extensions(selected: str | None) -> bytes:
    """EncryptedExtensions: ALPN with the one selected protocol, or no extension at all."""
    exts = b""
    if selected is not None:
        body = encode_alpn([selected])
        exts = struct.pack("!HH", EXT_ALPN, len(body)) + body
    return handshake(HT_ENCRYPTED_EXTENSIONS, struct.pack("!H", len(exts)) + exts)


def _ecdsa_signature(rng: random.Random) -> bytes:
    """A DER ECDSA-Sig-Value with random 32-byte r and s (top bit clear: no sign byte)."""
    ints = b"".join(b"\x02\x20" + bytes([rng.randrange(1, 128)]) + rng.randbytes(31) for _ in "rs")
    return b"\x30" + bytes([len(ints)]) + ints


class Sealer:
    """Seals one direction's handshake records with AES-128-GCM, counting sequence numbers."""

    __slots__ = ("_aead", "_iv", "seq")

    def __init__(self, secret: bytes) -> None:
        key, iv = server_handshake_key_iv(secret)
        self._aead = AESGCM(key)
        self._iv = int.from_bytes(iv, "big")
        self.seq = 0

    def seal(self, message: bytes, padding: int = 0) -> bytes:
        """One protected record: type 23, version 0x0303, AEAD(message + 22 + zeros)."""
        inner = message + bytes([CT_HANDSHAKE]) + bytes(padding)
        if len(inner) > MAX_INNER_PLAINTEXT:
            raise ValueError(f"inner plaintext of {len(inner)} bytes")
        header = struct.pack("!BHH", CT_APPLICATION_DATA, 0x0303, len(inner) + TAG_LEN)
        nonce = (self._iv ^ self.seq).to_bytes(IV_LEN, "big")
        self.seq += 1
        return header + self._aead.encrypt(nonce, inner, header)


def server_flight(rng: random.Random, secret: bytes, selected: str | None, size: int) -> bytes:
    """The server's encrypted flight (four records), ``size`` bytes in all when that is more
    than the records need (the Certificate record takes the padding), else as small as they go.
    """
    ee = encrypted_extensions(selected)
    cv_sig = _ecdsa_signature(rng)
    cv = handshake(
        HT_CERTIFICATE_VERIFY, struct.pack("!HH", SIG_ECDSA_SECP256R1_SHA256, len(cv_sig)) + cv_sig
    )
    fin = handshake(HT_FINISHED, rng.randbytes(SECRET_LEN))
    messages = (ee, CERTIFICATE, cv, fin)
    need = sum(len(m) + SEALED_OVERHEAD for m in messages)
    pad = min(max(0, size - need), MAX_INNER_PLAINTEXT - len(CERTIFICATE) - 1)
    sealer = Sealer(secret)
    return sealer.seal(ee) + sealer.seal(CERTIFICATE, pad) + sealer.seal(cv) + sealer.seal(fin)
