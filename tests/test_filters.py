"""Record filters (--host, --port, --sni, --alpn) on records from real captures."""

from __future__ import annotations

import dataclasses
import functools

import pytest

from alpnsniff.filters import RecordFilter
from alpnsniff.pipeline import analyze_file
from alpnsniff.records import Handshake
from tests.conftest import CAPTURES

NAMES = (
    "chromium_nginx_h2_veth1500.pcap",  # 10.99.0.2 -> 10.99.0.1:8443, two records, h2
    "openssl_aioquic_ipv6.pcap",  # fd00:99::2 -> fd00:99::1, TCP :4431 h2 and QUIC :4433 h3
    "gnutls_tls12_alpn.pcap",  # offers spdy/3 http/1.1, selects http/1.1
    "nghttp_h2_tls12.pcap",  # no SNI
    "nginx_curl_noalpn.pcap",  # no ALPN
    "pyssl_tls12_http11.pcap",  # SNI localhost, selects http/1.1
    "openssl_tls12_vxlan.pcap",  # 10.99.30.2 -> 10.99.30.1
)


@functools.cache
def records() -> tuple[Handshake, ...]:
    out: list[Handshake] = []
    for name in NAMES:
        out.extend(analyze_file(CAPTURES / name).handshakes)
    assert len(out) == 9
    return tuple(out)


def kept(f: RecordFilter) -> list[tuple[str, int]]:
    """(client address, client port) of the records ``f`` keeps."""
    return [(h.client_ip, h.client_port) for h in records() if f(h)]


def test_no_criterion_keeps_everything() -> None:
    f = RecordFilter()
    assert not f.active
    assert all(f(h) for h in records())
    assert RecordFilter(ports=(443,)).active and RecordFilter(alpns=("h2",)).active


def test_hosts() -> None:
    chromium = [("10.99.0.2", 36062), ("10.99.0.2", 36070)]
    assert kept(RecordFilter(hosts=("10.99.0.1",))) == chromium  # the server
    assert kept(RecordFilter(hosts=("10.99.0.2",))) == chromium  # the client
    assert kept(RecordFilter(hosts=("10.99.0.0/24",))) == chromium
    vxlan = [(h.client_ip, h.client_port) for h in analyze_file(CAPTURES / NAMES[-1]).handshakes]
    assert kept(RecordFilter(hosts=("10.0.0.0/8",))) == chromium + vxlan
    assert kept(RecordFilter(hosts=("10.99.0.1", "10.99.30.0/31"))) == chromium + vxlan  # OR
    local = kept(RecordFilter(hosts=("127.0.0.1",)))
    assert len(local) == 4 and all(ip == "127.0.0.1" for ip, _ in local)
    assert kept(RecordFilter(hosts=("127.0.0.0/8",))) == local
    assert kept(RecordFilter(hosts=("10.99.0.3", "192.0.2.0/24"))) == []


def test_hosts_ipv6() -> None:
    v6 = [("fd00:99::2", 45560), ("fd00:99::2", 51015)]
    assert kept(RecordFilter(hosts=("fd00:99::1",))) == v6
    assert kept(RecordFilter(hosts=("fd00:0099:0000:0000:0000:0000:0000:0002",))) == v6
    assert kept(RecordFilter(hosts=("FD00:99::2",))) == v6
    assert kept(RecordFilter(hosts=("fd00:99::/64",))) == v6
    assert kept(RecordFilter(hosts=("fd00::/8",))) == v6
    assert kept(RecordFilter(hosts=("::/0",))) == v6
    assert kept(RecordFilter(hosts=("2001:db8::/32",))) == []
    # an IPv4 prefix holds no IPv6 address, and the other way round
    assert all(ip != "fd00:99::2" for ip, _ in kept(RecordFilter(hosts=("0.0.0.0/0",))))
    assert len(kept(RecordFilter(hosts=("0.0.0.0/0",)))) == 7
    assert kept(RecordFilter(hosts=("::ffff:127.0.0.1",))) == []


def test_ports() -> None:
    assert kept(RecordFilter(ports=(8443,))) == [
        ("10.99.0.2", 36062),
        ("10.99.0.2", 36070),
        ("127.0.0.1", 54674),  # nginx, curl without ALPN
    ]
    assert kept(RecordFilter(ports=(36070,))) == [("10.99.0.2", 36070)]  # a client port
    assert kept(RecordFilter(ports=(4433,))) == [("fd00:99::2", 51015)]  # QUIC
    assert kept(RecordFilter(ports=(4433, 36070))) == [  # OR
        ("10.99.0.2", 36070),
        ("fd00:99::2", 51015),
    ]
    assert kept(RecordFilter(ports=(443,))) == []
    assert RecordFilter(ports=("8443",)).ports == (8443,)  # type: ignore[arg-type]


def test_sni_globs() -> None:
    www = kept(RecordFilter(sni_globs=("www.example.test",)))
    assert len(www) == 6
    assert kept(RecordFilter(sni_globs=("WWW.Example.TEST",))) == www  # case-insensitive
    assert kept(RecordFilter(sni_globs=("*.example.test",))) == [
        *www[:3],
        ("fd00:99::2", 51015),
        *www[3:],
    ]
    assert kept(RecordFilter(sni_globs=("quic.*",))) == [("fd00:99::2", 51015)]
    assert kept(RecordFilter(sni_globs=("local?ost",))) == [("127.0.0.1", 47640)]
    assert kept(RecordFilter(sni_globs=("[lq]*",))) == [("fd00:99::2", 51015), ("127.0.0.1", 47640)]
    assert kept(RecordFilter(sni_globs=("localhost", "quic.*"))) == kept(
        RecordFilter(sni_globs=("[lq]*",))
    )
    assert kept(RecordFilter(sni_globs=("example.test",))) == []  # a glob matches it all
    # the record without SNI matches no glob, not even "*"
    no_sni = [h for h in records() if h.sni is None]
    assert len(no_sni) == 1
    assert not RecordFilter(sni_globs=("*",))(no_sni[0])
    assert len(kept(RecordFilter(sni_globs=("*",)))) == 8


def test_alpns() -> None:
    h2 = kept(RecordFilter(alpns=("h2",)))
    assert len(h2) == 6  # all but QUIC (h3), gnutls (spdy/3, http/1.1) and curl without ALPN
    assert kept(RecordFilter(alpns=("h3",))) == [("fd00:99::2", 51015)]
    assert kept(RecordFilter(alpns=("spdy/3",))) == [("127.0.0.1", 53486)]
    assert kept(RecordFilter(alpns=("h2-16",))) == [("127.0.0.1", 57444)]
    assert len(kept(RecordFilter(alpns=("http/1.1",)))) == 6
    assert kept(RecordFilter(alpns=("H2",))) == []  # octets: exact
    assert len(kept(RecordFilter(alpns=("h3", "spdy/3")))) == 2
    # curl without ALPN matches no ID
    no_alpn = [h for h in records() if not h.alpn_offered_raw]
    assert len(no_alpn) == 1 and not RecordFilter(alpns=("h2", "http/1.1"))(no_alpn[0])


def test_alpn_selected_and_escaped() -> None:
    (real,) = analyze_file(CAPTURES / "pyssl_tls12_http11.pcap").handshakes
    odd = dataclasses.replace(real, alpn_offered_raw=(b"a b", b"\\", b"\xff\x00"))
    assert RecordFilter(alpns=("http/1.1",))(odd)  # the selected ID alone
    assert not RecordFilter(alpns=("h2",))(odd)
    assert RecordFilter(alpns=("a\\x20b",))(odd)  # as the CLI prints it
    assert RecordFilter(alpns=("\\x5c",))(odd)
    assert RecordFilter(alpns=("\\xff\\x00",))(odd)
    empty = dataclasses.replace(real, alpn_offered_raw=(b"",), alpn_selected_raw=None)
    assert RecordFilter(alpns=("",))(empty) and not RecordFilter(alpns=("",))(real)


def test_combinations() -> None:
    """AND across kinds."""
    assert kept(RecordFilter(hosts=("10.99.0.0/16",), ports=(36070,))) == [("10.99.0.2", 36070)]
    assert kept(RecordFilter(hosts=("fd00::/8",), alpns=("h2",))) == [("fd00:99::2", 45560)]
    assert kept(RecordFilter(hosts=("fd00::/8",), sni_globs=("www.*",), ports=(4433,))) == []
    assert kept(RecordFilter(ports=(4431,), alpns=("http/1.1",), sni_globs=("localhost",))) == [
        ("127.0.0.1", 47640)
    ]
    assert kept(
        RecordFilter(
            hosts=("127.0.0.1", "10.99.0.1"),
            ports=(8443, 4431),
            sni_globs=("*.example.test",),
            alpns=("h2",),
        )
    ) == [("10.99.0.2", 36062), ("10.99.0.2", 36070)]  # not curl on 127.0.0.1:8443 (no ALPN)
    assert ("127.0.0.1", 54674) in kept(RecordFilter(hosts=("127.0.0.1",), ports=(8443,)))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"hosts": ("10.0.0.300",)}, "--host '10.0.0.300': "),
        ({"hosts": ("10.1.2.3/8",)}, "--host '10.1.2.3/8': 10.1.2.3/8 has host bits set"),
        ({"hosts": ("example.test",)}, "--host 'example.test': "),
        ({"hosts": ("",)}, "--host '': "),
        ({"hosts": ("2001:db8::/129",)}, "--host '2001:db8::/129': "),
        ({"ports": (0,)}, "--port 0: not a port number (1-65535)"),
        ({"ports": (65536,)}, "--port 65536: not a port number (1-65535)"),
        ({"ports": ("https",)}, "--port 'https': not a port number (1-65535)"),
        ({"ports": (True,)}, "--port True: not a port number"),
        ({"alpns": ("a b",)}, "--alpn 'a b': not an ALPN ID as alpnsniff prints it"),
        ({"alpns": ("\\x68\\x32",)}, "--alpn '\\\\x68\\\\x32': not an ALPN ID as alpnsniff"),
        ({"alpns": ("\\xZZ",)}, "--alpn '\\\\xZZ': not an ALPN ID as alpnsniff prints it"),
        ({"alpns": ("\\x0A",)}, "--alpn '\\\\x0A': not an ALPN ID as alpnsniff prints it"),
    ],
)
def test_bad_values(kwargs: dict[str, tuple[object, ...]], message: str) -> None:
    with pytest.raises(ValueError) as caught:
        RecordFilter(**kwargs)  # type: ignore[arg-type]
    text = str(caught.value)
    assert text.startswith(message), text
    assert "\n" not in text


def test_bad_alpn_says_how_to_write_it() -> None:
    with pytest.raises(ValueError, match=r"a\\x20b\)$"):
        RecordFilter(alpns=("a b",))
    with pytest.raises(ValueError, match=r"it writes h2\)$"):
        RecordFilter(alpns=("\\x68\\x32",))


def test_a_string_is_not_a_tuple() -> None:
    with pytest.raises(TypeError):
        RecordFilter(hosts="10.0.0.1")  # type: ignore[arg-type]


def test_value_object() -> None:
    f = RecordFilter(hosts=["10.0.0.0/8"], ports=[443])  # type: ignore[arg-type]
    assert f == RecordFilter(hosts=("10.0.0.0/8",), ports=(443,))
    assert hash(f) == hash(RecordFilter(hosts=("10.0.0.0/8",), ports=(443,)))
    assert repr(f) == "RecordFilter(hosts=('10.0.0.0/8',), ports=(443,), sni_globs=(), alpns=())"
    with pytest.raises(dataclasses.FrozenInstanceError):
        f.ports = ()  # type: ignore[misc]
