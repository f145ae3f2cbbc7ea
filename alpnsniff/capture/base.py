"""What any capture source offers the pipeline: the :class:`Source` protocol.

A source is one run's packets and what came with them: a capture file or standard input
today (:class:`~alpnsniff.capture.source.CaptureSource`, from
:func:`~alpnsniff.capture.open_capture`), a live interface next. The pipeline reads it
through this protocol only, never through a format name:

* ``name``: for messages (a path, ``<stdin>``, an interface name);
* ``stats``: the :class:`CaptureStats` the reader fills in (interfaces, counts, the one
  line that says why reading stopped early);
* ``batches()``: the packets in capture order, once, a
  :class:`~alpnsniff.capture.batch.PacketBatch` at a time (a chunk of a file, a block of a
  live ring): what the pipeline reads; ``packets()``: the same, ``(ts_ns, linktype, frame
  bytes)`` per packet;
* ``secrets``: TLS secrets carried in-band as ``(secrets type, data)`` (pcapng Decryption
  Secrets Blocks), appended to while the packets are read: a consumer keeps the list and
  looks again when it needs a key, since a block comes before the packets it serves;
* ``carries_secrets``: whether ``secrets`` can ever fill at all (True for pcapng; False
  for pcap, and for a live interface), so that a run without a key log and without
  in-band secrets pays nothing for keys;
* ``close()``, and the context manager that calls it.

The members are read-only here: a source may hold them as plain attributes or compute
them. Structural: a source does not inherit from :class:`Source`.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import TracebackType
from typing import Protocol, Self, runtime_checkable

from .batch import PacketBatch
from .stats import CaptureStats

__all__ = ["Source"]


@runtime_checkable
class Source(Protocol):
    """A capture source as the pipeline sees it (see the module docstring)."""

    @property
    def name(self) -> str:
        """What to call the source in messages."""
        ...

    @property
    def stats(self) -> CaptureStats:
        """Counts and the reason reading stopped early, filled in while reading."""
        ...

    @property
    def secrets(self) -> list[tuple[int, bytes]]:
        """In-band TLS secrets as (secrets type, data), in capture order; appended to
        while the packets are read (the same list object throughout)."""
        ...

    @property
    def carries_secrets(self) -> bool:
        """True when this source can carry secrets in-band at all (pcapng's DSBs); when
        False, :attr:`secrets` stays empty."""
        ...

    def batches(self) -> Iterator[PacketBatch]:
        """The packets in capture order, once, a batch at a time: packet ``i`` of a batch
        lies at ``buf[starts[i] : starts[i] + lengths[i]]``. A source whose packets come
        one by one may hand on batches of one. Packets before in-band secrets come in a
        batch before the secrets are appended."""
        ...

    def packets(self) -> Iterator[tuple[int, int, bytes]]:
        """The packets of :meth:`batches` one at a time (either, not both, once):
        ``(ts_ns, linktype, data)`` per packet: ``ts_ns`` integer
        nanoseconds since the Unix epoch (UTC), ``linktype`` the packet's LINKTYPE_*
        value, ``data`` the captured bytes of the frame."""
        ...

    def close(self) -> None:
        """Release what the source holds open."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...
