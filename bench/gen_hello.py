"""TLS handshake messages for the benchmark generator: ClientHellos patched from real templates
(bench/templates.py) and ServerHellos built from their RFC 8446 / RFC 5246 structure.

Every length field is recomputed when a message is rebuilt; the tests check the results with
tshark and aioquic.
"""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass

# Extension code points used below (IANA TLS ExtensionType values).
EXT_SERVER_NAME = 0
EXT_PADDING = 21
EXT_ALPN = 16
EXT_KEY_SHARE = 51
EXT_SUPPORTED_VERSIONS = 43
EXT_PRE_SHARED_KEY = 41
EXT_QUIC_TP = 57
EXT_ECH = 0xFE0D
EXT_RENEGOTIATION_INFO = 0xFF01
EXT_EC_POINT_FORMATS = 11
EXT_SESSION_TICKET = 35
EXT_EMS = 23

GREASE = tuple(0x0A0A + 0x1010 * i for i in range(16))
# QUIC transport parameter carrying the client's Source Connection ID (RFC 9000 section 18.2).
TP_INITIAL_SCID = 0x0F


def is_grease(value: int) -> bool:
    return value & 0x0F0F == 0x0A0A and (value >> 8) == (value & 0xFF)


def encode_alpn(offers: list[str]) -> bytes:
    """ALPN extension body: a 2-byte-length list of 1-byte-length protocol names."""
    names = b"".join(bytes([len(n)]) + n.encode() for n in offers)
    return struct.pack("!H", len(names)) + names


def encode_sni(name: str) -> bytes:
    """server_name extension body with one host_name entry."""
    host = name.encode()
    entry = b"\x00" + struct.pack("!H", len(host)) + host
    return struct.pack("!H", len(entry)) + entry


def handshake(msg_type: int, body: bytes) -> bytes:
    return bytes([msg_type]) + len(body).to_bytes(3, "big") + body


def record(content_type: int, payload: bytes, version: int = 0x0303) -> bytes:
    return struct.pack("!BHH", content_type, version, len(payload)) + payload


@dataclass(frozen=True, slots=True)
class HelloTemplate:
    """A parsed real ClientHello: the parts that stay, and its extensions in order."""

    name: str
    legacy_version: bytes
    session_id_len: int
    cipher_suites: bytes
    compression: bytes
    extensions: tuple[tuple[int, bytes], ...]
    total_len: int
    shuffle: bool  # Chromium permutes its extensions on every connection

    @classmethod
    def parse(cls, name: str, msg: bytes, *, shuffle: bool = False) -> HelloTemplate:
        if msg[0] != 1 or int.from_bytes(msg[1:4], "big") != len(msg) - 4:
            raise ValueError(f"{name}: not one whole ClientHello")
        pos = 4
        version = msg[pos : pos + 2]
        pos += 2 + 32
        sid_len = msg[pos]
        pos += 1 + sid_len
        (cs_len,) = struct.unpack_from("!H", msg, pos)
        suites = msg[pos + 2 : pos + 2 + cs_len]
        pos += 2 + cs_len
        comp = msg[pos + 1 : pos + 1 + msg[pos]]
        pos += 1 + msg[pos]
        (ext_total,) = struct.unpack_from("!H", msg, pos)
        pos += 2
        end = pos + ext_total
        if end != len(msg):
            raise ValueError(f"{name}: extensions do not end the message")
        exts: list[tuple[int, bytes]] = []
        while pos < end:
            etype, elen = struct.unpack_from("!HH", msg, pos)
            exts.append((etype, msg[pos + 4 : pos + 4 + elen]))
            pos += 4 + elen
        return cls(name, version, sid_len, suites, comp, tuple(exts), len(msg), shuffle)

    def offers(self) -> list[str] | None:
        """The ALPN protocols the template itself offers (None when it has no ALPN)."""
        for etype, data in self.extensions:
            if etype == EXT_ALPN:
                out, pos = [], 2
                while pos < len(data):
                    out.append(data[pos + 1 : pos + 1 + data[pos]].decode())
                    pos += 1 + data[pos]
                return out
        return None


def _random_key_share(rng: random.Random, data: bytes) -> bytes:
    """key_share client list with fresh key bytes of the same sizes (GREASE entries kept)."""
    out = bytearray(data)
    pos = 2
    while pos + 4 <= len(data):
        group, klen = struct.unpack_from("!HH", data, pos)
        if not is_grease(group):
            out[pos + 4 : pos + 4 + klen] = rng.randbytes(klen)
        pos += 4 + klen
    return bytes(out)


def _random_ech(rng: random.Random, data: bytes) -> bytes:
    """GREASE ECH outer extension with a fresh config id, enc and payload (same sizes)."""
    # type(1)=outer, kdf(2), aead(2), config_id(1), enc<2>, payload<2>
    if len(data) < 10 or data[0] != 0:
        return data
    (enc_len,) = struct.unpack_from("!H", data, 6)
    (pl_len,) = struct.unpack_from("!H", data, 8 + enc_len)
    return (
        data[:5]
        + rng.randbytes(1)
        + data[6:8]
        + rng.randbytes(enc_len)
        + data[8 + enc_len : 10 + enc_len]
        + rng.randbytes(pl_len)
    )


def _patch_quic_tp(data: bytes, scid: bytes) -> bytes:
    """Replace initial_source_connection_id in QUIC transport parameters by ``scid``."""
    from gen_quic import decode_varint, encode_varint

    out = b""
    pos = 0
    while pos < len(data):
        start = pos
        pid, pos = decode_varint(data, pos)
        plen, pos = decode_varint(data, pos)
        if pid == TP_INITIAL_SCID:
            out += encode_varint(pid) + encode_varint(len(scid)) + scid
        else:
            out += data[start : pos + plen]
        pos += plen
    return out


def build_client_hello(
    tpl: HelloTemplate,
    rng: random.Random,
    *,
    sni: str | None,
    offers: list[str] | None,
    quic_scid: bytes | None = None,
) -> bytes:
    """A fresh ClientHello from ``tpl``: new random, session id, key shares, GREASE, SNI and
    ALPN offer list (None removes the extension); padding keeps the template's size."""
    exts: list[tuple[int, bytes]] = []
    have_sni = False
    for etype, data in tpl.extensions:
        if etype == EXT_SERVER_NAME:
            have_sni = True
            if sni is not None:
                exts.append((etype, encode_sni(sni)))
        elif etype == EXT_ALPN:
            if offers is not None:
                exts.append((etype, encode_alpn(offers)))
        elif etype == EXT_KEY_SHARE:
            exts.append((etype, _random_key_share(rng, data)))
        elif etype == EXT_ECH:
            exts.append((etype, _random_ech(rng, data)))
        elif etype == EXT_QUIC_TP and quic_scid is not None:
            exts.append((etype, _patch_quic_tp(data, quic_scid)))
        else:
            exts.append((etype, data))
    if sni is not None and not have_sni:
        exts.insert(0, (EXT_SERVER_NAME, encode_sni(sni)))
    if offers is not None and not any(e == EXT_ALPN for e, _ in exts):
        exts.insert(min(len(exts), 4), (EXT_ALPN, encode_alpn(offers)))
    if tpl.shuffle:
        exts = _chromium_order(rng, exts)
    head = (
        tpl.legacy_version
        + rng.randbytes(32)
        + bytes([tpl.session_id_len])
        + rng.randbytes(tpl.session_id_len)
        + struct.pack("!H", len(tpl.cipher_suites))
        + tpl.cipher_suites
        + bytes([len(tpl.compression)])
        + tpl.compression
    )
    if any(e[0] == EXT_PADDING for e in exts):
        unpadded = [e for e in exts if e[0] != EXT_PADDING]
        pad = tpl.total_len - 4 - len(head) - 2 - _ext_size(unpadded) - 4
        exts = [*unpadded, (EXT_PADDING, bytes(pad))] if pad >= 0 else unpadded
    ext_bytes = b"".join(struct.pack("!HH", t, len(d)) + d for t, d in exts)
    return handshake(1, head + struct.pack("!H", len(ext_bytes)) + ext_bytes)


def _ext_size(exts: list[tuple[int, bytes]]) -> int:
    return sum(4 + len(d) for _, d in exts)


def _chromium_order(rng: random.Random, exts: list[tuple[int, bytes]]) -> list[tuple[int, bytes]]:
    """GREASE first and last with fresh distinct values, the rest permuted (as Chromium does);
    pre_shared_key would stay last, padding stays where it is."""
    middle = [e for e in exts if not is_grease(e[0]) and e[0] not in (EXT_PADDING,)]
    rng.shuffle(middle)
    if not any(is_grease(t) for t, _ in exts):  # Chromium's QUIC hello has no GREASE types
        return middle + [e for e in exts if e[0] == EXT_PADDING]
    g1, g2 = rng.sample(GREASE, 2)
    first = [(g1, b"")]
    grease_last = [d for t, d in exts if is_grease(t)][-1:] or [b"\x00"]
    psk = [e for e in middle if e[0] == EXT_PRE_SHARED_KEY]
    middle = [e for e in middle if e[0] != EXT_PRE_SHARED_KEY]
    pad = [e for e in exts if e[0] == EXT_PADDING]
    return first + middle + [(g2, grease_last[0])] + pad + psk


def server_hello_tls12(
    rng: random.Random, *, selected: str | None, session_id: bytes, cipher: int = 0xC02B
) -> bytes:
    """A TLS 1.2 ServerHello as nginx/OpenSSL sends it, ALPN selection in the clear."""
    exts = [
        (EXT_RENEGOTIATION_INFO, b"\x00"),
        (EXT_EC_POINT_FORMATS, b"\x03\x00\x01\x02"),
        (EXT_SESSION_TICKET, b""),
    ]
    if selected is not None:
        exts.append((EXT_ALPN, encode_alpn([selected])))
    exts.append((EXT_EMS, b""))
    return _server_hello(rng, session_id, cipher, exts)


def server_hello_tls13(rng: random.Random, *, session_id: bytes, cipher: int = 0x1301) -> bytes:
    """A TLS 1.3 ServerHello (x25519 key share, supported_versions 0x0304, no ALPN)."""
    exts = [
        (EXT_SUPPORTED_VERSIONS, b"\x03\x04"),
        (EXT_KEY_SHARE, b"\x00\x1d\x00\x20" + rng.randbytes(32)),
    ]
    return _server_hello(rng, session_id, cipher, exts)


def _server_hello(
    rng: random.Random, session_id: bytes, cipher: int, exts: list[tuple[int, bytes]]
) -> bytes:
    ext_bytes = b"".join(struct.pack("!HH", t, len(d)) + d for t, d in exts)
    body = (
        b"\x03\x03"
        + rng.randbytes(32)
        + bytes([len(session_id)])
        + session_id
        + struct.pack("!HB", cipher, 0)
        + struct.pack("!H", len(ext_bytes))
        + ext_bytes
    )
    return handshake(2, body)


def client_hello_session_id(msg: bytes) -> bytes:
    """The legacy_session_id of a ClientHello message (the server echoes it in TLS 1.3)."""
    sid_len = msg[4 + 2 + 32]
    return msg[4 + 2 + 32 + 1 : 4 + 2 + 32 + 1 + sid_len]
