"""BPF capture filters (tcpdump syntax) for frames read from files.

``compile_frame_filter("tcp port 443")`` returns a :data:`FrameFilter`, a callable
``(linktype, data) -> bool`` for :class:`alpnsniff.pipeline.Dissector` (``frame_filter=``):
the pipeline skips the frames it rejects, counts them as ``packets_filtered_out`` and still
numbers them, so the records' ``frame`` stays Wireshark's number.

Engine: libpcap itself, through :mod:`ctypes` (no extension module, no subprocess). The
expression is compiled exactly as ``tcpdump -r FILE EXPR`` compiles it: ``pcap_compile`` on a
dead handle (``pcap_open_dead``) of the frame's link type, snapshot length 262144, optimizer
on, netmask 0 (what tcpdump uses for a file, so ``ip broadcast`` means what it means there);
the program then runs in libpcap's own interpreter, ``bpf_filter`` (the function behind
``pcap_offline_filter``), on the captured bytes, their length given as both the captured and
the original length (a frame cut by the snapshot length is judged as if that were all of it:
``greater N`` / ``len`` can differ from tcpdump's there). The instructions are copied into
memory Python owns and libpcap's copy is freed at once (``pcap_freecode``), so a program needs
no finalizer; calling the filter touches no shared state (safe from several threads).
Scapy's bindings (``scapy.arch.common.compile_filter``, ``scapy.libs.winpcapy``) are not
used: they have no ``pcap_offline_filter`` / ``bpf_filter``, compile with scapy's MTU as the
snapshot length and PCAP_NETMASK_UNKNOWN, and importing scapy costs ~1 s.

The expression is checked at once (compiled for Ethernet); the program of every other link
type is compiled at the first frame of that type and kept (a pcapng may mix link types). A
link type the expression cannot be compiled for (``vlan`` on Linux cooked capture, ``ip6``
on raw IPv4 — "expression rejects all packets" — or a link type libpcap has no filter code
for) raises :class:`BpfError` at that first frame, naming the link type: what tcpdump does
for such a file (it refuses it), rather than silently dropping every frame of it.

Link types are LINKTYPE_ values (the file's); the few whose DLT_ value differs (LINKTYPE_RAW
101 is DLT_RAW 12 on Linux) are mapped as libpcap maps them when it reads a file.

Cost: ~1 µs a frame on the CI machine (one dict look-up and one ctypes call), paid only when
a filter is given.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Callable
from typing import Any

from ..errors import CaptureError

# The same type as alpnsniff.pipeline.FrameFilter (not imported: the pipeline imports us).
FrameFilter = Callable[[int, bytes], bool]

LINKTYPE_ETHERNET = 1
SNAPLEN = 262144  # tcpdump's default snapshot length (MAXIMUM_SNAPLEN)
NETMASK = 0  # tcpdump -r compiles with netmask 0
OPTIMIZE = 1  # tcpdump's default (-O turns it off)
PCAP_ERRBUF_SIZE = 256
BPF_INSN_SIZE = 8  # struct bpf_insn: u_short code; u_char jt, jf; bpf_u_int32 k

LIBPCAP_MISSING = "BPF filters need libpcap (Debian: apt install libpcap0.8)"
# Tried in turn before ctypes.util.find_library (which runs ldconfig / gcc: slow).
LIBRARY_NAMES = ("libpcap.so.1", "libpcap.so.0.8", "libpcap.so", "libpcap.A.dylib")

# LINKTYPE_ values (pcap / pcapng files) whose DLT_ value differs, by their DLT name (the
# number is the platform's: DLT_RAW is 12 on Linux, 14 on OpenBSD); libpcap's
# linktype_to_dlt() maps these for the files it reads.
_LINKTYPE_DLT_NAMES = {
    100: "ATM_RFC1483",
    101: "RAW",
    102: "SLIP_BSDOS",
    103: "PPP_BSDOS",
    106: "ATM_CLIP",
}


class BpfError(CaptureError):
    """A filter that cannot be used: bad syntax, a link type it cannot be compiled for, or
    no libpcap. Its message is one line for the user (the CLI prints it, exit status 2)."""


class _BpfProgram(ctypes.Structure):
    _fields_ = (("bf_len", ctypes.c_uint), ("bf_insns", ctypes.c_void_p))


class _Libpcap:
    """The few libpcap functions a filter needs, with their C types."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        self.lib = lib
        lib.pcap_open_dead.argtypes = (ctypes.c_int, ctypes.c_int)
        lib.pcap_open_dead.restype = ctypes.c_void_p
        lib.pcap_close.argtypes = (ctypes.c_void_p,)
        lib.pcap_close.restype = None
        lib.pcap_compile.argtypes = (
            ctypes.c_void_p,
            ctypes.POINTER(_BpfProgram),
            ctypes.c_char_p,
            ctypes.c_int,
            ctypes.c_uint32,
        )
        lib.pcap_compile.restype = ctypes.c_int
        lib.pcap_geterr.argtypes = (ctypes.c_void_p,)
        lib.pcap_geterr.restype = ctypes.c_char_p
        lib.pcap_freecode.argtypes = (ctypes.POINTER(_BpfProgram),)
        lib.pcap_freecode.restype = None
        lib.pcap_datalink_name_to_val.argtypes = (ctypes.c_char_p,)
        lib.pcap_datalink_name_to_val.restype = ctypes.c_int
        lib.pcap_datalink_val_to_name.argtypes = (ctypes.c_int,)
        lib.pcap_datalink_val_to_name.restype = ctypes.c_char_p
        lib.pcap_lib_version.argtypes = ()
        lib.pcap_lib_version.restype = ctypes.c_char_p
        # u_int bpf_filter(const struct bpf_insn *, const u_char *, u_int wirelen, u_int buflen)
        # (pcap/bpf.h; pcap_offline_filter calls it with the header's len and caplen). Called
        # the cheapest way ctypes has, ~0.5 µs less than through CDLL with argtypes: holding
        # the GIL (PyDLL: the call is a few hundred ns of loop-free code, releasing the GIL
        # would cost more) and without argtypes (the caller passes a c_void_p, the bytes,
        # whose buffer ctypes passes as it is, and two ints; anything but bytes for the
        # frame raises ctypes.ArgumentError).
        fast = ctypes.PyDLL(lib._name, handle=lib._handle)
        self.bpf_filter: Callable[[ctypes.c_void_p, bytes, int, int], int] = fast.bpf_filter
        fast.bpf_filter.restype = ctypes.c_uint
        self.version = (lib.pcap_lib_version() or b"libpcap").decode("ascii", "replace")

    def dlt(self, linktype: int) -> int:
        name = _LINKTYPE_DLT_NAMES.get(linktype)
        if name is None:
            return linktype
        value: int = self.lib.pcap_datalink_name_to_val(name.encode("ascii"))
        return value if value >= 0 else linktype

    def linktype_name(self, linktype: int) -> str:
        name: bytes | None = self.lib.pcap_datalink_val_to_name(self.dlt(linktype))
        return name.decode("ascii", "replace") if name else "unknown to libpcap"

    def compile(self, expression: bytes, linktype: int, snaplen: int = SNAPLEN) -> bytes:
        """The program's instructions (struct bpf_insn, native order) for frames cut to
        ``snaplen`` (its accept value), or a ValueError with libpcap's message."""
        lib = self.lib
        handle = lib.pcap_open_dead(self.dlt(linktype), snaplen)
        if not handle:
            raise ValueError("pcap_open_dead failed (out of memory?)")
        try:
            program = _BpfProgram()
            if lib.pcap_compile(handle, ctypes.byref(program), expression, OPTIMIZE, NETMASK):
                message: bytes | None = lib.pcap_geterr(handle)
                raise ValueError((message or b"pcap_compile failed").decode("utf-8", "replace"))
            try:
                return ctypes.string_at(program.bf_insns, program.bf_len * BPF_INSN_SIZE)
            finally:
                lib.pcap_freecode(ctypes.byref(program))
        finally:
            lib.pcap_close(handle)


def _load(names: tuple[str, ...]) -> ctypes.CDLL | None:
    for name in names:
        try:
            return ctypes.CDLL(name)
        except OSError:
            continue
    found = ctypes.util.find_library("pcap")
    if found is not None:
        try:
            return ctypes.CDLL(found)
        except OSError:
            pass
    return None


@functools.cache
def libpcap() -> _Libpcap:
    """libpcap, loaded once; :class:`BpfError` when it is not installed."""
    lib = _load(LIBRARY_NAMES)
    if lib is None:
        raise BpfError(LIBPCAP_MISSING)
    try:
        return _Libpcap(lib)
    except AttributeError as err:  # a library without the functions we call
        raise BpfError(f"{LIBPCAP_MISSING}: {err}") from None


def _shown(text: str) -> str:
    """``text`` for one line of a message: nothing unprintable, not too long."""
    text = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)
    return text if len(text) <= 200 else text[:199] + "…"


class BpfFilter:
    """A compiled capture filter: ``filter(linktype, data)`` is True to keep the frame.

    Built by :func:`compile_frame_filter`. One program per link type, compiled at its first
    frame. Picklable (by its expression).
    """

    __slots__ = ("_encoded", "_insns", "_lib", "_programs", "_run", "expression")

    def __init__(self, expression: str) -> None:
        self.expression = expression
        self._lib = libpcap()
        self._run = self._lib.bpf_filter
        self._encoded = expression.encode("utf-8", "surrogateescape")
        if b"\0" in self._encoded:
            raise BpfError(f"bad filter '{_shown(expression)}': NUL in the expression")
        # linktype -> pointer to the instructions; _insns keeps their buffers alive
        self._programs: dict[int, ctypes.c_void_p] = {}
        self._insns: dict[int, ctypes.Array[ctypes.c_char]] = {}
        self._program(LINKTYPE_ETHERNET, first=True)

    def __call__(self, linktype: int, data: bytes) -> bool:
        program = self._programs.get(linktype)
        if program is None:
            program = self._program(linktype)
        n = len(data)
        return self._run(program, data, n, n) != 0

    def _program(self, linktype: int, first: bool = False) -> ctypes.c_void_p:
        try:
            insns = self._lib.compile(self._encoded, linktype)
        except ValueError as err:
            where = (
                "" if first else f" for link type {linktype} ({self._lib.linktype_name(linktype)})"
            )
            raise BpfError(
                f"bad filter '{_shown(self.expression)}'{where}: {_shown(str(err))}"
            ) from None
        buffer = ctypes.create_string_buffer(insns, len(insns))
        self._insns[linktype] = buffer
        program = ctypes.c_void_p(ctypes.addressof(buffer))
        self._programs[linktype] = program
        return program

    def instructions(self, linktype: int = LINKTYPE_ETHERNET) -> bytes:
        """The program for ``linktype`` (struct bpf_insn, 8 bytes each, native byte order):
        what ``tcpdump -y TYPE -ddd`` prints, as bytes."""
        if linktype not in self._programs:
            self._program(linktype)
        return self._insns[linktype].raw

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.expression,))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.expression!r})"


def compile_frame_filter(expression: str) -> FrameFilter:
    """A frame filter for the pipeline from a tcpdump filter expression.

    The expression is compiled for Ethernet at once (a bad one raises :class:`BpfError`,
    ``bad filter 'port foo': unknown port 'foo'``); for any other link type at its first
    frame, where one that the expression cannot be compiled for raises :class:`BpfError`
    naming it. Without libpcap: :class:`BpfError` (:data:`LIBPCAP_MISSING`). An empty
    expression keeps every frame (as tcpdump's).
    """
    return BpfFilter(expression)
