"""HTTP CONNECT heads and the RFC 7639 ALPN header: real tinyproxy exchanges, the RFC's
encoding rules case by case, malformed and hostile heads, and properties."""

from __future__ import annotations

import string
from pathlib import Path

import dpkt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alpnsniff.http.connect import (
    MAX_ALPN_IDS,
    MAX_HEAD_BYTES,
    ConnectError,
    ConnectRequest,
    ConnectResponse,
    is_connect_start,
    parse_connect_request,
    parse_connect_response,
)

CAPTURES = Path(__file__).resolve().parents[2] / "captures"
PROPERTY = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

REQUEST_LINE = b"CONNECT a:1 HTTP/1.1\r\n"  # 22 octets
CLIENT_HELLO_START = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"  # record + handshake headers

# tchar of RFC 9110 §5.6.2, written out again here: the oracle does not share the parser's table
TCHAR = frozenset(b"!#$%&'*+-.^_`|~" + string.ascii_letters.encode() + string.digits.encode())


def canonical_form(raw: bytes) -> bytes:
    """RFC 7639 §2.1's one spelling of an ALPN ID: every tchar but "%" as it is, every other
    octet %XX with uppercase hex digits."""
    return b"".join(bytes([o]) if o in TCHAR and o != 0x25 else b"%%%02X" % o for o in raw)


def request(*header_lines: bytes) -> bytes:
    return REQUEST_LINE + b"".join(line + b"\r\n" for line in header_lines) + b"\r\n"


def parsed_request(data: bytes) -> ConnectRequest:
    result = parse_connect_request(data)
    assert isinstance(result, ConnectRequest), result
    return result


def alpn_of(value: bytes) -> ConnectRequest:
    return parsed_request(request(b"ALPN: " + value))


# ---- real exchanges: tinyproxy 1.11.1, captures/tinyproxy_connect_alpn.pcap (captures/README.md)


def tcp_payloads(path: Path) -> dict[tuple[int, int], bytes]:
    """Each TCP direction's payload, keyed (source port, destination port), in order of first
    appearance; segments put in sequence order (a short loopback capture: no loss, no wrap)."""
    segments: dict[tuple[int, int], dict[int, bytes]] = {}
    with path.open("rb") as f:
        for _ts, frame in dpkt.pcap.Reader(f):
            tcp = dpkt.ethernet.Ethernet(frame).data.data
            if isinstance(tcp, dpkt.tcp.TCP) and tcp.data:
                segments.setdefault((tcp.sport, tcp.dport), {})[tcp.seq] = bytes(tcp.data)
    return {
        key: b"".join(data for _, data in sorted(by_seq.items()))
        for key, by_seq in segments.items()
    }


# connections a-g of the capture: (target, ALPN header as sent, decoded IDs, canonical, status)
TINYPROXY = [
    (b"127.0.0.1:8443", b"h2, http%2F1.1", (b"h2", b"http/1.1"), True, 200),
    (b"127.0.0.1:8443", b"h%32, http%2f1.1", (b"h2", b"http/1.1"), False, 200),
    (b"127.0.0.1:8443", b"h2, http%2F1.1", (b"h2", b"http/1.1"), True, 200),  # two lines
    (b"127.0.0.1:8443", None, None, None, 200),
    (b"127.0.0.1:8443", b"h2", (b"h2",), True, 200),
    (b"127.0.0.1:9999", b"h2", (b"h2",), True, 403),  # port not allowed: no tunnel
    (b"127.0.0.1:8443", None, None, None, 200),  # curl: Host, User-Agent, Proxy-Connection
]
# head lengths, counted from the heads as sent: request line 33, Host line 22, then
# a 22 + blank 2; b 24 + 2; c 10 + 18 + 2; d 2; e 10 + 2; f 10 + 2; g 25 + 30 + 2
TINYPROXY_REQUEST_HEADS = [79, 81, 85, 57, 67, 67, 112]


def test_tinyproxy_connect_requests_and_answers() -> None:
    payloads = tcp_payloads(CAPTURES / "tinyproxy_connect_alpn.pcap")
    to_proxy = [data for (_, dport), data in payloads.items() if dport == 3128]
    from_proxy = [data for (sport, _), data in payloads.items() if sport == 3128]
    assert len(to_proxy) == len(from_proxy) == len(TINYPROXY)
    for i, (target, header, ids, canonical, status) in enumerate(TINYPROXY):
        client, proxy = to_proxy[i], from_proxy[i]
        assert is_connect_start(client)
        req = parsed_request(client)
        assert req.target == target
        assert (req.alpn_header, req.alpn_raw, req.alpn_canonical) == (header, ids, canonical)
        assert not req.alpn_truncated
        head = TINYPROXY_REQUEST_HEADS[i]
        assert req.head_length == head
        assert client[head - 4 : head] == b"\r\n\r\n"
        resp = parse_connect_response(proxy)
        assert isinstance(resp, ConnectResponse)
        assert resp.status == status
        if status == 200:
            # "HTTP/1.0 200 Connection established\r\n" 37 + "Proxy-agent: tinyproxy/1.11.1\r\n" 31 + 2
            assert resp.head_length == 70
            assert resp.tunnel_established
            assert client[head : head + 3] == b"\x16\x03\x01"  # the ClientHello record
            assert proxy[70:73] == b"\x16\x03\x03"  # the ServerHello record
        else:
            # "HTTP/1.1 403 Access violation\r\n" 31 + Server 26 + Content-Type 25 + Connection 19 + 2
            assert resp.head_length == 103
            assert not resp.tunnel_established
            assert client[head:] == b""  # the client waited for the answer: nothing after
            assert proxy[resp.head_length :].startswith(b"<?xml")  # the error page


# ---- RFC 7639: its §2.2 example, and the §2.1 encoding rules


def test_rfc7639_example_request() -> None:
    data = (
        b"CONNECT www.example.com HTTP/1.1\r\nHost: www.example.com\r\nALPN: h2, http%2F1.1\r\n\r\n"
    )
    req = parsed_request(data + CLIENT_HELLO_START)
    assert req == ConnectRequest(
        target=b"www.example.com",
        alpn_raw=(b"h2", b"http/1.1"),
        alpn_header=b"h2, http%2F1.1",
        alpn_canonical=True,
        alpn_truncated=False,
        head_length=34 + 23 + 22 + 2,
    )
    assert req.head_length == len(data)
    assert req.target_text == "www.example.com"
    assert req.alpn_texts == ("h2", "http/1.1")


@pytest.mark.parametrize(
    ("value", "ids", "canonical"),
    [
        (b"h2", (b"h2",), True),
        (b"http%2F1.1", (b"http/1.1",), True),
        (b"w%3D%3D", (b"w==",), True),  # "=" is not a tchar: it must be encoded
        (b"%25", (b"%",), True),  # "%" itself is always encoded
        (b"%E2%99%A5", (b"\xe2\x99\xa5",), True),  # non-ASCII octets, encoded
        (b"h%32", (b"h2",), False),  # "2" is a tchar: must not be encoded
        (b"http%2f1.1", (b"http/1.1",), False),  # lowercase hex digits
        (b"w%3d%3D", (b"w==",), False),  # one lowercase digit is enough
        (b"%41%42", (b"AB",), False),
        (b"w==", (b"w==",), False),  # "=" sent as it is: not a token, kept whole
        (b"http/1.1", (b"http/1.1",), False),  # the common mistake, kept whole
        (b"h 2", (b"h 2",), False),  # a space inside an element
        (b'"h2"', (b'"h2"',), False),  # a quoted string is not a token
        (b"%4", (b"%4",), False),  # escapes cut short or not hex: the element kept as sent
        (b"%zz", (b"%zz",), False),
        (b"h2%", (b"h2%",), False),
        (b"a%2Fb%zz", (b"a%2Fb%zz",), False),  # not half-decoded
        (b"h2, http%2F1.1", (b"h2", b"http/1.1"), True),
        (b"h2,http%2F1.1", (b"h2", b"http/1.1"), True),  # OWS is optional
        (b"h2 ,\thttp%2F1.1", (b"h2", b"http/1.1"), True),
        (b"h2, %zz, h3", (b"h2", b"%zz", b"h3"), False),  # one bad element hides no other
        (b"h2, , h3", (b"h2", b"h3"), False),  # empty elements skipped, but not conforming
        (b", h2", (b"h2",), False),
        (b"h2,", (b"h2",), False),
        (b"", (), False),  # 1#protocol-id: at least one
        (b",", (), False),
        (b"h2, h2", (b"h2", b"h2"), True),  # repeats kept: what the client sent
    ],
)
def test_protocol_id_decoding_and_canonical_form(
    value: bytes, ids: tuple[bytes, ...], canonical: bool
) -> None:
    req = alpn_of(value)
    assert (req.alpn_raw, req.alpn_canonical, req.alpn_header) == (ids, canonical, value)
    assert not req.alpn_truncated


def test_header_lines_combined_in_order() -> None:
    req = parsed_request(request(b"ALPN: h2", b"Host: a:1", b"alpn: http%2F1.1", b"Alpn:h3 "))
    assert req.alpn_header == b"h2, http%2F1.1, h3"  # RFC 9110 §5.3, OWS trimmed per line
    assert req.alpn_raw == (b"h2", b"http/1.1", b"h3")
    assert req.alpn_canonical is True
    # an empty line value still counts as a line: the combined value has an empty element
    empty = parsed_request(request(b"ALPN: h2", b"ALPN:"))
    assert (empty.alpn_header, empty.alpn_raw, empty.alpn_canonical) == (b"h2, ", (b"h2",), False)


@pytest.mark.parametrize("name", [b"ALPN", b"alpn", b"Alpn", b"aLpN"])
def test_field_name_is_case_insensitive(name: bytes) -> None:
    assert parsed_request(request(name + b": h2")).alpn_raw == (b"h2",)


@pytest.mark.parametrize(
    "line",
    [
        b"Host: a:1",
        b"ALPN : h2",  # whitespace before the colon: a proxy rejects it (RFC 9112 §5.1)
        b"X-ALPN: h2",
        b"ALPNs: h2",
        b"ALPN h2",  # no colon
        b" ALPN: h2",  # a fold of nothing, right after the request line
    ],
)
def test_lines_that_are_not_the_alpn_field(line: bytes) -> None:
    req = parsed_request(request(line))
    assert (req.alpn_raw, req.alpn_header, req.alpn_canonical) == (None, None, None)
    assert req.head_length == 22 + len(line) + 2 + 2


def test_obs_fold_continues_the_alpn_field() -> None:
    req = parsed_request(request(b"ALPN: h2,", b" \thttp%2F1.1", b"Host: a:1", b"  h3"))
    # the fold after Host continues Host, not ALPN
    assert req.alpn_header == b"h2, http%2F1.1"
    assert req.alpn_raw == (b"h2", b"http/1.1")
    assert req.alpn_canonical is True


# ---- the request line and the head's end


def test_bare_lf_line_ends() -> None:
    for data in (
        b"CONNECT a:1 HTTP/1.1\nALPN: h2\n\n",
        b"CONNECT a:1 HTTP/1.1\r\nALPN: h2\n\r\n",
        b"CONNECT a:1 HTTP/1.1\nALPN: h2\r\n\n",
    ):
        req = parsed_request(data + CLIENT_HELLO_START)
        assert (req.alpn_raw, req.head_length) == ((b"h2",), len(data))
    assert parsed_request(b"CONNECT a:1 HTTP/1.0\n\n").head_length == 22


def test_head_length_is_where_the_tunnel_starts() -> None:
    head = request(b"Host: a:1", b"ALPN: h2")
    assert len(head) == 22 + 11 + 10 + 2
    for tail in (b"", CLIENT_HELLO_START, b"\r\n\r\n", b"CONNECT b:2 HTTP/1.1\r\n\r\n"):
        req = parsed_request(head + tail)
        assert req.head_length == 45
        assert (head + tail)[req.head_length :] == tail


def test_every_cut_short_head_waits_for_more() -> None:
    data = request(b"Host: www.example.com:443", b"ALPN: h2, http%2F1.1")
    for cut in range(len(data)):
        assert parse_connect_request(data[:cut]) is None, data[:cut]
    assert parsed_request(data).head_length == len(data)


@pytest.mark.parametrize(
    "data",
    [
        b"GET / HTTP/1.1\r\n\r\n",
        b"connect a:1 HTTP/1.1\r\n\r\n",  # the method is case-sensitive
        b"CONNECT a:1 HTTP/2.0\r\n\r\n",
        b"CONNECT a:1 HTTP/1.2\r\n\r\n",
        b"CONNECT a:1 http/1.1\r\n\r\n",
        b"CONNECT a:1 HTTP/1.1 \r\n\r\n",
        b"CONNECT a:1\r\n\r\n",
        b"CONNECT a:1 HTTP/1.1\r\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc",
        b"CONNECTa:1 HTTP/1.1\r\n\r\n",
        b"G",  # judged as soon as it cannot be "CONNECT "
        b"CONNECT a:1 HTTP/1.1\r\n",  # a complete request line is judged at once ...
    ],
)
def test_not_connect(data: bytes) -> None:
    expected = None if data == b"CONNECT a:1 HTTP/1.1\r\n" else ConnectError("not_connect")
    assert parse_connect_request(data) == expected  # ... and a good one waits for the head


def test_bad_request_line_is_judged_before_the_head_ends() -> None:
    assert parse_connect_request(b"CONNECT a:1 HTTP/9.9\r\nHost: a") == ConnectError("not_connect")
    assert parse_connect_request(b"CONNECT a\x00:1 HTTP/1.1\r\nHo") == ConnectError("bad_target")
    assert parse_connect_request(b"CONN") is None
    assert parse_connect_request(b"") is None


@pytest.mark.parametrize(
    "target", [b"", b"a b:1", b"a\x00:1", b"a\t:1", b"a\x7f:1", b"\x1b[31m:1", b" a:1"]
)
def test_bad_target(target: bytes) -> None:
    data = b"CONNECT " + target + b" HTTP/1.1\r\n\r\n"
    assert parse_connect_request(data) == ConnectError("bad_target")


def test_target_is_kept_as_sent() -> None:
    req = parsed_request(b"CONNECT [2001:db8::1]:443 HTTP/1.1\r\n\r\n")
    assert req.target == b"[2001:db8::1]:443"
    # no port (RFC 9110 §9.3.6 wants one): kept; non-ASCII: kept, escaped as text
    odd = parsed_request(b"CONNECT \xc3\xa9xample\\com HTTP/1.1\r\n\r\n")
    assert odd.target == b"\xc3\xa9xample\\com"
    assert odd.target_text == "\\xc3\\xa9xample\\x5ccom"


def test_head_budget_boundary() -> None:
    # 22 + "X: " 3 + filler + CRLF 2 + blank 2 = MAX_HEAD_BYTES
    filler = MAX_HEAD_BYTES - 29
    exact = request(b"X: " + b"x" * filler)
    assert len(exact) == 16384
    assert parsed_request(exact + CLIENT_HELLO_START).head_length == 16384
    over = request(b"X: " + b"x" * (filler + 1))
    assert parse_connect_request(over[:16383]) is None  # could still end within the budget
    assert parse_connect_request(over[:16384]) == ConnectError("head_too_long")
    assert parse_connect_request(over) == ConnectError("head_too_long")
    # a request line longer than the budget
    endless = b"CONNECT " + b"a" * 20000
    assert parse_connect_request(endless) == ConnectError("head_too_long")
    assert parse_connect_request(endless[:16383]) is None


# ---- hostile heads


def test_ten_thousand_commas() -> None:
    req = alpn_of(b"," * 10000)
    assert (req.alpn_raw, req.alpn_canonical, req.alpn_truncated) == ((), False, False)
    assert req.head_length == 22 + 6 + 10000 + 2 + 2


def test_more_ids_than_kept() -> None:
    value = b",".join([b"h2"] * 5000)  # 14999 octets: the head still fits the budget
    req = alpn_of(value)
    assert req.alpn_raw == (b"h2",) * MAX_ALPN_IDS
    assert MAX_ALPN_IDS == 255
    assert req.alpn_truncated is True
    assert req.alpn_canonical is True
    assert req.alpn_header == value
    exactly = alpn_of(b",".join([b"h3"] * 255))
    assert (len(exactly.alpn_raw or ()), exactly.alpn_truncated) == (255, False)


def test_nul_and_non_ascii_octets() -> None:
    req = alpn_of(b"h\x002, \xc3\xa9, %C3%A9, \x1b[2J")
    assert req.alpn_raw == (b"h\x002", b"\xc3\xa9", b"\xc3\xa9", b"\x1b[2J")
    assert req.alpn_canonical is False  # only the third is a canonical token
    assert req.alpn_texts == ("h\\x002", "\\xc3\\xa9", "\\xc3\\xa9", "\\x1b[2J")


def test_percent_floods_and_many_lines() -> None:
    req = alpn_of(b"%" * 10000)
    assert (req.alpn_raw, req.alpn_canonical) == ((b"%" * 10000,), False)
    many = parsed_request(request(*[b"ALPN: h2"] * 1500))  # 1500 lines of 10 octets
    assert many.alpn_raw == (b"h2",) * 255
    assert many.alpn_truncated is True
    assert many.head_length == 22 + 1500 * 10 + 2


# ---- the proxy's answer


@pytest.mark.parametrize(
    ("head", "status"),
    [
        (b"HTTP/1.1 200 Connection established\r\n\r\n", 200),
        (b"HTTP/1.0 200 OK\r\nProxy-agent: x\r\n\r\n", 200),
        (b"HTTP/1.1 200\r\n\r\n", 200),  # no reason phrase, and no SP before it
        (b"HTTP/1.1 200 \r\n\r\n", 200),
        (b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n", 403),
        (
            b"HTTP/1.1 407 Proxy Authentication Required\r\n"
            b'Proxy-Authenticate: Basic realm="proxy"\r\n\r\n',
            407,
        ),
        (b"HTTP/1.1 502 Bad Gateway\r\n\r\n", 502),
        (b"HTTP/1.1 101 Switching Protocols\r\n\r\n", 101),  # final: another protocol follows
        (b"HTTP/1.1 200 OK\n\n", 200),
    ],
)
def test_final_responses(head: bytes, status: int) -> None:
    tail = b"\x16\x03\x03\x00\x7a\x02"
    resp = parse_connect_response(head + tail)
    assert resp == ConnectResponse(status, len(head))
    assert resp.tunnel_established is (status == 200)


def test_interim_responses_are_skipped() -> None:
    cont = b"HTTP/1.1 100 Continue\r\n\r\n"  # 25 octets
    hints = b"HTTP/1.1 103 Early Hints\r\nLink: </a>; rel=preload\r\n\r\n"  # 53 octets
    final = b"HTTP/1.1 200 Connection established\r\n\r\n"  # 39 octets
    data = cont + hints + final + b"\x16\x03\x03"
    assert parse_connect_response(data) == ConnectResponse(200, 25 + 53 + 39)
    for cut in range(25 + 53 + 39):
        assert parse_connect_response(data[:cut]) is None
    assert parse_connect_response(cont + b"SSH-2.0-x\r\n") == ConnectError("not_http")
    assert parse_connect_response(cont * 700) == ConnectError("head_too_long")  # 17500 octets


def test_response_with_a_body_after_the_head() -> None:
    head = b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 11\r\n\r\n"
    resp = parse_connect_response(head + b"auth needed" + b"HTTP/1.1 200 OK\r\n\r\n")
    assert resp == ConnectResponse(407, len(head))
    assert len(head) == 44 + 20 + 2


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"SSH-2.0-OpenSSH_9.2\r\n", "not_http"),
        (b"\x16\x03\x03\x00\x7a", "not_http"),
        (b"HTTP/2 200\r\n\r\n", "not_http"),
        (b"HTTP/1.2 200 OK\r\n\r\n", "not_http"),
        (b"HTTP/1.1200 OK\r\n\r\n", "bad_status"),  # HTTP/1.1, then no SP
        (b"http/1.1 200 OK\r\n\r\n", "not_http"),
        (b"HTTP/1.1 20 OK\r\n\r\n", "bad_status"),
        (b"HTTP/1.1 2000 OK\r\n\r\n", "bad_status"),
        (b"HTTP/1.1 099 Low\r\n\r\n", "bad_status"),
        (b"HTTP/1.1 600 High\r\n\r\n", "bad_status"),
        (b"HTTP/1.1 +20 OK\r\n\r\n", "bad_status"),
        (b"HTTP/1.1  200 OK\r\n\r\n", "bad_status"),
        (b"HTTP/1.1 200\tOK\r\n\r\n", "bad_status"),
        (b"HTTP/1.1 200 OK\r\n", None),  # a good status line waits for its head's end
        (b"HTTP/1.1 2000 OK\r\n", "bad_status"),  # a bad one does not
        (b"HTTP/1.1 200 " + b"x" * MAX_HEAD_BYTES, "head_too_long"),
    ],
)
def test_bad_responses(data: bytes, reason: str | None) -> None:
    expected = None if reason is None else ConnectError(reason)
    assert parse_connect_response(data) == expected


def test_is_connect_start() -> None:
    assert is_connect_start(b"CONNECT example.com:443 HTTP/1.1\r\n")
    assert not is_connect_start(b"CONNECT")  # too short to tell: parse_connect_request waits
    assert not is_connect_start(b"connect example.com:443 HTTP/1.1\r\n")
    assert not is_connect_start(b"GET / HTTP/1.1\r\n")
    assert not is_connect_start(b"")


# ---- properties

# pieces of heads, "|"-separated; with a long run of one octet to reach the head budget
# pieces of heads, "|"-separated, and long runs of one octet to reach the head budget
PIECES = (
    b"CONNECT |a:1| HTTP/1.1|HTTP/1.0 |HTTP/1.1 |100|200|OK|\r\n|\n|\r|ALPN|alpn|:| |\t|,|%|2F|2f"
    b'|3D|h2|\x00|\xff|"|='
).split(b"|")
FRAGMENTS = st.sampled_from([*PIECES, b"x" * 300, b"," * 4000])
STARTS = st.sampled_from(
    [
        REQUEST_LINE,
        b"CONNECT [::1]:443 HTTP/1.0\n",
        b"HTTP/1.1 200 Connection established\r\n",
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 407 Proxy Authentication Required\n",
        b"HTTP/1.1 100 Continue\r\n\r\n",
    ]
)
ALPN_LINES = st.tuples(
    st.sampled_from([b"ALPN: ", b"alpn:", b"ALPN:\t", b" "]),  # " ": an obs-fold
    st.lists(FRAGMENTS, max_size=10).map(b"".join),
).map(b"".join)
OTHER_LINES = st.lists(FRAGMENTS, max_size=10).map(b"".join)
HEADER_LINES = st.lists(
    st.tuples(st.one_of(ALPN_LINES, OTHER_LINES), st.sampled_from([b"\r\n", b"\n"])).map(b"".join),
    max_size=12,
).map(b"".join)
HEADS = st.one_of(
    st.binary(max_size=600),
    st.lists(FRAGMENTS, max_size=60).map(b"".join),
    st.tuples(  # a start line, header lines, maybe the blank line, maybe tunnel bytes
        STARTS, HEADER_LINES, st.sampled_from([b"\r\n", b"\n", b""]), st.binary(max_size=8)
    ).map(b"".join),
)


def cuts(data: bytes) -> range:
    """About 60 prefix lengths, from 0 to len(data)."""
    return range(0, len(data) + 1, max(1, len(data) // 60))


@PROPERTY
@given(HEADS)
def test_request_parser_never_raises_and_is_consistent_with_its_prefixes(data: bytes) -> None:
    result = parse_connect_request(data)
    assert result is None or isinstance(result, ConnectRequest | ConnectError)
    if isinstance(result, ConnectRequest):
        assert 0 < result.head_length <= min(len(data), MAX_HEAD_BYTES)
        assert len(result.alpn_raw or ()) <= MAX_ALPN_IDS
        assert parse_connect_request(data[: result.head_length]) == result
        assert (result.alpn_raw is None) is (result.alpn_canonical is None)
        assert (result.alpn_raw is None) is (result.alpn_header is None)
    # streaming: a prefix either waits or already says what the whole says
    for cut in cuts(data):
        assert parse_connect_request(data[:cut]) in (None, result)


@PROPERTY
@given(HEADS)
def test_response_parser_never_raises_and_is_consistent_with_its_prefixes(data: bytes) -> None:
    result = parse_connect_response(data)
    assert result is None or isinstance(result, ConnectResponse | ConnectError)
    if isinstance(result, ConnectResponse):
        assert 0 < result.head_length <= min(len(data), MAX_HEAD_BYTES)
        assert 100 <= result.status <= 599
        assert parse_connect_response(data[: result.head_length]) == result
    for cut in cuts(data):
        assert parse_connect_response(data[:cut]) in (None, result)


@PROPERTY
@given(st.binary(min_size=1, max_size=64))
def test_canonical_encoding_decodes_back(raw: bytes) -> None:
    req = alpn_of(canonical_form(raw))
    assert (req.alpn_raw, req.alpn_canonical) == ((raw,), True)


# one element: anything but the list and line syntax (",", OWS at its ends, CR, LF)
ELEMENT_OCTETS = bytes(o for o in range(256) if o not in b", \t\r\n")
ELEMENTS = st.one_of(
    st.binary(min_size=1, max_size=30).map(lambda b: bytes(ELEMENT_OCTETS[o % 251] for o in b)),
    st.lists(
        st.sampled_from(b'%|2F|2f|32|3D|25|C3|z|h|A|=|/|"|\x00|\xe9'.split(b"|")),
        min_size=1,
        max_size=12,
    ).map(b"".join),
)


@PROPERTY
@given(ELEMENTS)
def test_canonical_means_the_one_spelling(element: bytes) -> None:
    assert len(ELEMENT_OCTETS) == 251
    req = alpn_of(element)
    assert req.alpn_raw is not None and len(req.alpn_raw) == 1
    # canonical exactly when re-encoding the ID gives back the octets that were sent
    assert req.alpn_canonical is (canonical_form(req.alpn_raw[0]) == element)
