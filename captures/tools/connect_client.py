"""HTTP CONNECT client that sends RFC 7639's ALPN header, then speaks TLS through the tunnel.

    python3 connect_client.py PROXY_HOST PROXY_PORT TARGET_HOST:PORT
        [--alpn-header VALUE]...   one `ALPN: VALUE` header line each, VALUE sent byte for byte
        [--tls-alpn h2,http/1.1]   ALPN list of the ClientHello (default: the header's tokens,
                                   percent-decoded; none at all if neither is given)
        [--sni www.example.test] [--keylog FILE]
        [--auth USER:PASS]         add `Proxy-Authorization: Basic base64(USER:PASS)`
        [--retry-after-407]        with --auth: send the CONNECT without credentials first,
                                   expect a 407, then ask again with them on the same socket

It sends `CONNECT TARGET HTTP/1.1` with a Host header and the ALPN lines, reads the proxy's
response head byte by byte (so no tunnel byte is consumed).  With --retry-after-407 the first
answer must be a 407 with a Content-Length: its body is read in full, then the same request
plus Proxy-Authorization goes out on the same connection and its answer counts.  On a 2xx
status it wraps the same socket in TLS (no certificate check), sends one GET (HTTP/1.1, or a
minimal HTTP/2 request when h2 is selected), reads the response and closes; otherwise it reads
the error body to the proxy's close.  One line on stdout says what happened.
Exit status: 0 tunnel and TLS done, 1 the proxy refused (non-2xx), 2 any other failure
(including, with --retry-after-407, a first answer that is not a 407 on a kept-open connection).
"""

import argparse
import base64
import socket
import ssl
import struct
import sys
from urllib.parse import unquote

HEAD_LIMIT = 16384  # bytes of a proxy response head
# HTTP/2 (RFC 9113): client preface, an empty SETTINGS frame, then HEADERS on stream 1 with
# END_STREAM|END_HEADERS; the HPACK block uses static-table entries (RFC 7541 appendix A):
# 0x82 :method GET, 0x87 :scheme https, 0x84 :path /, 0x41 literal :authority (indexed name 1)
H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
H2_END_STREAM, H2_END_HEADERS = 0x1, 0x4
H2_DATA, H2_HEADERS, H2_GOAWAY = 0x0, 0x1, 0x7
# the :status values with their own static-table entry (indices 8 to 14)
H2_STATIC_STATUS = {0x88: 200, 0x89: 204, 0x8A: 206, 0x8B: 304, 0x8C: 400, 0x8D: 404, 0x8E: 500}


def h2_frame(kind: int, flags: int, stream: int, payload: bytes) -> bytes:
    """One HTTP/2 frame: 24-bit length, type, flags, 31-bit stream id, payload."""
    return (
        struct.pack(">I", len(payload))[1:]
        + bytes([kind, flags])
        + struct.pack(">I", stream)
        + payload
    )


def h2_get(authority: str) -> bytes:
    """Preface + SETTINGS + a GET / for AUTHORITY on stream 1."""
    name = authority.encode()
    block = b"\x82\x87\x84\x41" + bytes([len(name)]) + name
    return H2_PREFACE + h2_frame(H2_HEADERS, H2_END_HEADERS | H2_END_STREAM, 1, block)


def recv_exact(sock: socket.socket, count: int) -> bytes:
    """COUNT bytes from SOCK (plain or TLS), fewer only if the peer closed."""
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            break
        data += chunk
    return data


def h2_response(tls: ssl.SSLSocket) -> str:
    """Read frames until stream 1 ends (or GOAWAY / close); say what the response was."""
    status = "?"
    while True:
        head = recv_exact(tls, 9)
        if len(head) < 9:
            return f"h2 :status {status}, connection closed"
        length = int.from_bytes(head[:3], "big")
        kind, flags, stream = head[3], head[4], int.from_bytes(head[5:9], "big") & 0x7FFFFFFF
        payload = recv_exact(tls, length)
        if kind == H2_HEADERS and stream == 1 and payload:
            status = str(H2_STATIC_STATUS.get(payload[0], "?"))
        if kind == H2_GOAWAY:
            return f"h2 :status {status}, GOAWAY"
        if kind in (H2_DATA, H2_HEADERS) and stream == 1 and flags & H2_END_STREAM:
            return f"h2 :status {status}"


def http11_response(tls: ssl.SSLSocket, authority: str) -> str:
    """Send an HTTP/1.1 GET with Connection: close, read to the server's close; the status line."""
    tls.sendall(f"GET / HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n".encode())
    data = b""
    while chunk := tls.recv(4096):
        data += chunk
    return data.split(b"\r\n", 1)[0].decode("latin-1") or "no response"


def read_head(sock: socket.socket) -> bytes:
    """The proxy's response head up to and including the blank line, one byte at a time."""
    head = b""
    while not head.endswith(b"\r\n\r\n") and len(head) < HEAD_LIMIT:
        byte = sock.recv(1)
        if not byte:
            break
        head += byte
    return head


def connect_request(target: str, alpn_headers: list[str], authorization: str | None) -> bytes:
    """The CONNECT request head: Host, the ALPN lines in order, then Proxy-Authorization."""
    request = f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n"
    request += "".join(f"ALPN: {value}\r\n" for value in alpn_headers)
    if authorization is not None:
        request += f"Proxy-Authorization: {authorization}\r\n"
    return (request + "\r\n").encode("latin-1")


def header_value(head: bytes, name: str) -> str | None:
    """The value of the first header field NAME (case-insensitive) in a response head."""
    for line in head.decode("latin-1").split("\r\n")[1:]:
        field, colon, value = line.partition(":")
        if colon and field.strip().lower() == name.lower():
            return value.strip()
    return None


def status_of(head: bytes) -> tuple[str, str]:
    """(status line, status code) of a response head; the code is "?" if there is none."""
    status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
    return status_line, status_line.split(" ")[1] if status_line.count(" ") >= 1 else "?"


def read_challenge(sock: socket.socket, target: str, alpn_headers: list[str]) -> str:
    """Send the CONNECT without credentials, read the 407 head and its whole Content-Length
    body, leaving the connection open for the retry; say what came back.  ValueError if the
    answer is not a 407 that keeps the connection open."""
    sock.sendall(connect_request(target, alpn_headers, None))
    head = read_head(sock)
    status_line, status = status_of(head)
    if status != "407":
        raise ValueError(f"expected a 407 challenge, got {status_line!r}")
    length = header_value(head, "Content-Length")
    if length is None or not length.isdigit():
        raise ValueError(f"407 without a usable Content-Length ({length!r})")
    body = recv_exact(sock, int(length))
    if len(body) < int(length):
        raise ValueError(f"proxy closed after {len(body)} of {length} 407 body bytes")
    if (header_value(head, "Connection") or "").lower() == "close":
        raise ValueError("the 407 says Connection: close, no retry on the same connection")
    return f"proxy {status_line!r} ({len(body)} body bytes), retried on the same connection; "


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("proxy_host")
    parser.add_argument("proxy_port", type=int)
    parser.add_argument("target", help="HOST:PORT of the CONNECT request")
    parser.add_argument("--alpn-header", action="append", default=[], metavar="VALUE")
    parser.add_argument("--tls-alpn", metavar="LIST", help="comma-separated ClientHello ALPN list")
    parser.add_argument("--sni", default="www.example.test")
    parser.add_argument("--keylog", metavar="FILE", help="append NSS key log lines to FILE")
    parser.add_argument("--auth", metavar="USER:PASS", help="send Proxy-Authorization: Basic")
    parser.add_argument(
        "--retry-after-407",
        action="store_true",
        help="with --auth: first CONNECT without credentials, the retry with them",
    )
    args = parser.parse_args()
    if args.retry_after_407 and args.auth is None:
        parser.error("--retry-after-407 needs --auth")
    authorization = None
    if args.auth is not None:
        authorization = "Basic " + base64.b64encode(args.auth.encode()).decode("ascii")

    if args.tls_alpn is not None:
        offer = [name for name in args.tls_alpn.split(",") if name]
    else:  # RFC 7639: comma-separated, percent-encoded protocol ids, lines combined in order
        offer = [unquote(token.strip()) for value in args.alpn_header for token in value.split(",")]
    try:
        sock = socket.create_connection((args.proxy_host, args.proxy_port), timeout=10)
        challenge = ""
        if args.retry_after_407:
            challenge = read_challenge(sock, args.target, args.alpn_header)
        sock.sendall(connect_request(args.target, args.alpn_header, authorization))
        head = read_head(sock)
        status_line, status = status_of(head)
        if not status.startswith("2"):  # read the error body to its end: a clean close, no RST
            body = b""
            while chunk := sock.recv(4096):
                body += chunk
            sock.close()
            print(f"{challenge}proxy {status_line!r}: refused, no TLS ({len(body)} body bytes)")
            return 1
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        if offer:
            context.set_alpn_protocols(offer)
        if args.keylog:
            context.keylog_filename = args.keylog
        with context.wrap_socket(sock, server_hostname=args.sni) as tls:
            selected = tls.selected_alpn_protocol()
            if selected == "h2":
                tls.sendall(h2_get(args.sni))
                response = h2_response(tls)
            else:
                response = http11_response(tls, args.sni)
            print(
                f"{challenge}proxy {status_line!r}; {tls.version()} offer {','.join(offer) or '-'} "
                f"selected {selected}; {response}"
            )
    except (OSError, ValueError) as error:
        print(f"error: {error!r}")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
