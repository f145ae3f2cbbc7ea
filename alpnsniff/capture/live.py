"""Opening a live capture: a ring on each interface named, merged by time when several.

The one place the CLI (``alpnsniff live``) and the notebook API (``alpnsniff.sniff``,
``alpnsniff.stream``) open interfaces, so that both capture alike.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .base import Source
from .kernel_filter import MAX_SNAPLEN
from .merge import MergedRings
from .ring import BLOCK_COUNT, BLOCK_SIZE, RingSource


def open_live(
    interfaces: Sequence[str],
    *,
    promiscuous: bool = True,
    kernel_filter: str | None = None,
    snaplen: int = MAX_SNAPLEN,
    buffer_mib: int = BLOCK_COUNT * BLOCK_SIZE >> 20,
    should_stop: Callable[[], bool] = lambda: False,
    fanout_groups: Sequence[int] | None = None,
) -> Source:
    """A ring on each of ``interfaces`` (one: that ring; several: :class:`MergedRings`), each
    stopping once ``should_stop()`` says so. ``kernel_filter``: a tcpdump expression the kernel
    runs (None: the default, which drops what the dissector never looks at; "": none);
    ``snaplen``: bytes kept of each frame; ``buffer_mib``: each ring's size;
    ``fanout_groups``: the PACKET_FANOUT group each interface's ring joins (``NEW_FANOUT_GROUP``:
    one of its own, whose id :func:`fanout_groups` then gives), so that several sources
    opened alike split the packets by flow (``--jobs``). Raises :class:`~alpnsniff.errors.CaptureError`
    (no such interface, capture not permitted, …) with every ring opened so far closed."""
    if not interfaces:
        raise ValueError("no interface to capture on")
    if len(set(interfaces)) != len(interfaces):
        raise ValueError("an interface is named twice")
    rings: list[RingSource] = []
    try:
        for interface in interfaces:
            rings.append(
                RingSource(
                    interface,
                    promiscuous=promiscuous,
                    kernel_filter=kernel_filter,
                    snaplen=snaplen,
                    block_count=max(1, buffer_mib * (1 << 20) // BLOCK_SIZE),
                    should_stop=should_stop,
                    fanout_group=None if fanout_groups is None else fanout_groups[len(rings)],
                )
            )
    except BaseException:
        for ring in rings:
            ring.close()
        raise
    if len(rings) == 1:
        return rings[0]
    return MergedRings(rings, should_stop=should_stop)


def fanout_groups(source: Source) -> list[int]:
    """The PACKET_FANOUT group of each interface's ring of ``source`` (for the next sources
    of a --jobs run to join)."""
    rings = getattr(source, "rings", [source])
    return [int(getattr(ring, "fanout_group", -1)) for ring in rings]


def kernel_counts(source: Source) -> dict[str, int]:
    """What the kernel counted for a live source: ``kernel_packets`` it gave the rings
    (including those it dropped), ``kernel_drops`` (a ring was full), ``kernel_freezes``,
    and ``snap_cut`` (frames the snap length cut); per interface too (``_if<N>``, N its
    index) when there are several."""
    names = ("kernel_packets", "kernel_drops", "kernel_freezes", "snap_cut")
    counts = {name: int(getattr(source, name, 0)) for name in names}
    for n, ring in enumerate(getattr(source, "rings", ())):
        for name in names:
            counts[f"{name}_if{n}"] = int(getattr(ring, name))
    return counts
