"""A kernel filter for a packet socket: a tcpdump expression run by Linux before the ring.

``attach_filter(sock, expression, linktype, snaplen)`` compiles ``expression`` with libpcap
(the same ``pcap_compile`` on a dead handle as :mod:`alpnsniff.capture.bpf`, of the
interface's link type, optimizer on, netmask 0) for a snapshot length, and attaches the
program to the socket (``setsockopt(SOL_SOCKET, SO_ATTACH_FILTER, struct sock_fprog)``).
libpcap's ``struct bpf_insn`` is Linux's ``struct sock_filter`` byte for byte, so the
instructions go to the kernel as libpcap wrote them. A frame the program accepts is cut to
the program's return value, which is the snapshot length (``ret #snaplen``): that is how
``tcpdump -s`` works on Linux, the kernel copies only that much into the ring (``tp_snaplen``;
``tp_len`` keeps the length on the wire). An empty expression is "keep everything, cut to
``snaplen``".

Order (no packet before the filter, nothing to drain): open the packet socket with protocol
0 — it receives nothing until it is bound with a protocol — set ``PACKET_VERSION``, attach
the filter, set up the ring and ``mmap`` it, then ``bind((interface, ETH_P_ALL))``. A socket
opened with ``ETH_P_ALL`` receives from every interface from the moment it exists; libpcap
opens with protocol 0 for that reason. Replacing the filter of a socket already receiving is
what libpcap's ``set_kernel_filter`` does with a drop-all program first (:func:`drop_all`),
then draining what was queued; with a ring, what the blocks already hold was judged by the
old program, so the user-space filter (:mod:`~alpnsniff.capture.bpf`) has to judge it again.

:data:`DEFAULT_FILTER` keeps exactly what the dissector looks at: it drops a TCP segment
that carries no payload and has none of SYN, FIN and RST (a pure ACK, the bulk of a busy
link), over IPv4 not fragmented (DF alone allowed, as the hot loop's fast path) and IPv6
whose next header is TCP, on the link itself or under one 802.1Q / 802.1ad tag; it keeps
every other frame (UDP, tunnels, fragments, IPv6 extension headers, other
ethertypes, two tags), whose skips the dissector counts. The payload length is the IP
header's (total length minus the IP and TCP headers; IPv6: payload length minus the TCP
header), so Ethernet padding does not count as payload; a length that does not add up
(shorter than the headers, or 0 for a GSO/BIG TCP super-packet) keeps the frame. Every load
is guarded by ``len``: a classic BPF program that reads past the frame's end returns 0
(drops it), so without the guards a frame cut inside its headers, which the dissector
counts, would vanish. The expression depends on the link type (the VLAN keyword exists only
for Ethernet, the guards hold the link header's length): :func:`default_filter`;
:data:`DEFAULT_FILTER` is Ethernet's (and Linux loopback's, which reads as Ethernet).

On Linux a VLAN tag the NIC stripped (``rx-vlan-offload``) is not in the frame the filter
sees: it reads as untagged, which the first branch handles. The user-space ``-f`` runs the
same libpcap code on the file's frames, so ``alpnsniff read -f DEFAULT_FILTER`` giving the
records of ``alpnsniff read`` shows the program keeps what the dissector needs
(tests/capture/test_kernel_filter.py, over every capture of the repository and the corpus).
"""

from __future__ import annotations

import ctypes
import socket
import struct

from .bpf import (
    BPF_INSN_SIZE,
    BpfError,
    _shown,
    libpcap,
)

SO_ATTACH_FILTER = 26  # <asm-generic/socket.h>; socket.SO_ATTACH_FILTER is not in Python 3.11
SO_DETACH_FILTER = 27
BPF_MAXINSNS = 4096  # the kernel refuses a longer classic program (EINVAL)
MAX_SNAPLEN = 262144  # tcpdump's largest (MAXIMUM_SNAPLEN); 0 means this, as tcpdump -s 0
MIN_SNAPLEN = 1

LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
# The length of the link header of the link types whose header has a fixed size and says
# (or whose IP version nibble says) what it carries: Ethernet, BSD loopback (NULL, LOOP),
# raw IP (RAW and its Linux DLT 12, IPV4, IPV6), Linux cooked (SLL, SLL2).
_LINK_HEADER = {1: 14, 0: 4, 108: 4, 101: 0, 12: 0, 228: 0, 229: 0, 113: 16, 276: 20}
_VLAN_TAG = 4


def _drop_clause(link: int) -> str:
    """The frames to drop (pure ACKs) when the IP header starts at ``link``."""
    v4 = (
        "(ip and ip[9] = 6 and ip[6:2] & 0xbfff = 0"
        f" and len >= {link + 14} + ((ip[0] & 0xf) << 2) and tcp[13] & 7 = 0"
        " and ip[2:2] = ((ip[0] & 0xf) << 2) + ((tcp[12] & 0xf0) >> 2))"
    )
    v6 = (
        f"(ip6 and len >= {link + 54} and ip6[6] = 6 and ip6[53] & 7 = 0"
        " and ip6[4:2] = (ip6[52] & 0xf0) >> 2)"
    )
    return f"(len >= {link + 20} and ({v4} or {v6}))"


def default_filter(linktype: int) -> str:
    """The default kernel filter for frames of ``linktype`` (a LINKTYPE_ value): drop pure
    ACKs, keep the rest (see the module docstring). For a link type whose header length is
    not fixed, the empty expression (keep everything)."""
    link = _LINK_HEADER.get(linktype)
    if link is None:
        return ""
    if linktype == LINKTYPE_ETHERNET:
        # (the vlan keyword moves every later offset by the tag: it must come last)
        vlan = f"(len >= {link + _VLAN_TAG + 20} and vlan and {_drop_clause(link + _VLAN_TAG)})"
        return f"not ({_drop_clause(link)} or {vlan})"
    return f"not {_drop_clause(link)}"


DEFAULT_FILTER = default_filter(LINKTYPE_ETHERNET)


def compile_program(expression: str, linktype: int, snaplen: int = MAX_SNAPLEN) -> bytes:
    """``expression`` compiled for frames of ``linktype`` cut to ``snaplen`` bytes: the
    instructions (``struct sock_filter``, 8 bytes each, native byte order), what
    ``tcpdump -y TYPE -s SNAPLEN -ddd`` prints. :class:`BpfError` for a bad expression, one
    the link type cannot have, a bad snapshot length or a program too long for the kernel."""
    if snaplen == 0:
        snaplen = MAX_SNAPLEN
    if not MIN_SNAPLEN <= snaplen <= MAX_SNAPLEN:
        raise BpfError(f"bad snapshot length {snaplen}: from {MIN_SNAPLEN} to {MAX_SNAPLEN}")
    encoded = expression.encode("utf-8", "surrogateescape")
    if b"\0" in encoded:
        raise BpfError(f"bad filter '{_shown(expression)}': NUL in the expression")
    pcap = libpcap()
    try:
        insns = pcap.compile(encoded, linktype, snaplen)
    except ValueError as err:
        raise BpfError(
            f"bad filter '{_shown(expression)}' for link type {linktype}"
            f" ({pcap.linktype_name(linktype)}): {_shown(str(err))}"
        ) from None
    count = len(insns) // BPF_INSN_SIZE
    if count > BPF_MAXINSNS:
        raise BpfError(
            f"filter '{_shown(expression)}' compiles to {count} instructions,"
            f" more than the kernel's {BPF_MAXINSNS}"
        )
    return insns


def _attach(sock: socket.socket, insns: bytes) -> None:
    """Attach the program ``insns`` (struct sock_filter array) to ``sock``."""
    # struct sock_fprog { unsigned short len; struct sock_filter *filter; }: the kernel copies
    # the instructions during the call, so the buffer need only live until it returns
    buffer = ctypes.create_string_buffer(insns, len(insns))
    fprog = struct.pack("@HP", len(insns) // BPF_INSN_SIZE, ctypes.addressof(buffer))
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
    except OSError as exc:
        raise BpfError(f"the kernel refused the filter: {exc.strerror or exc}") from None


def attach_filter(sock: socket.socket, expression: str, linktype: int, snaplen: int) -> bytes:
    """Compile ``expression`` for ``linktype`` and ``snaplen`` (0: the largest) and attach it
    to the packet socket ``sock``, replacing any filter it had; the instructions attached
    are returned. Call it after ``PACKET_VERSION`` and before ``PACKET_RX_RING`` and
    ``bind`` on a socket opened with protocol 0 (the module docstring says why).
    :class:`BpfError` when the expression does not compile or the kernel refuses it."""
    insns = compile_program(expression, linktype, snaplen)
    _attach(sock, insns)
    return insns


def drop_all(sock: socket.socket) -> None:
    """Attach a program that drops every frame (``ret #0``): the first step of replacing the
    filter of a socket that is already receiving (as libpcap's ``set_kernel_filter``)."""
    _attach(sock, struct.pack("=HBBI", 0x06, 0, 0, 0))  # BPF_RET | BPF_K, k = 0


def detach_filter(sock: socket.socket) -> None:
    """Remove the socket's filter (every frame kept, whole)."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_DETACH_FILTER, 0)
    except OSError as exc:
        raise BpfError(f"cannot detach the filter: {exc.strerror or exc}") from None
