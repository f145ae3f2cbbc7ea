"""Which modules the compiled build compiles with mypyc, and which build is installed.

``setup.py`` reads ``COMPILED_MODULES`` (it executes this file on its own, so the file
imports only the standard library). Left pure, on purpose, because they are off the
per-packet path and compiling them would cost a feature:

- the package ``__init__`` files;
- ``cli`` (argument parsing and signal handling, run once);
- ``parallel`` (it hands functions and records to worker processes by pickling);
- ``capture.base``: the ``Source`` protocol is ``runtime_checkable``, which mypyc refuses;
- ``capture.bpf`` and ``capture.kernel_filter``: ctypes calls, once a capture (mypyc 2.4 emits
  C for them that does not build);
- ``capture.live``, ``capture.interfaces``, ``live`` (the notebook API): once a run;
- ``sinks.live_view``, ``sinks.rotate``, ``sinks.parquet_stream``: rich and pyarrow calls,
  once a record or once a second;
- ``sinks.frame``: pandas and pyarrow calls, once a run;
- ``filters``: ``RecordFilter`` takes any sequence and makes it a tuple, where a compiled
  dataclass would insist on the declared tuple (it runs once a record, not once a packet).
"""

from __future__ import annotations

import importlib.machinery
import importlib.util

COMPILED_MODULES: tuple[str, ...] = (
    "alpnsniff.errors",
    "alpnsniff.records",
    "alpnsniff.pipeline",
    "alpnsniff.capture.pcap",
    "alpnsniff.capture.pcapng",
    "alpnsniff.capture.source",
    "alpnsniff.capture.stats",
    "alpnsniff.capture.dedup",
    "alpnsniff.capture.ring",
    "alpnsniff.capture.merge",
    "alpnsniff.net.decode",
    "alpnsniff.net.fragments",
    "alpnsniff.net.ip",
    "alpnsniff.net.link",
    "alpnsniff.net.segment",
    "alpnsniff.net.tcp",
    "alpnsniff.net.tunnels",
    "alpnsniff.flows.answers",
    "alpnsniff.flows.outcome",
    "alpnsniff.flows.quic",
    "alpnsniff.flows.state",
    "alpnsniff.flows.table",
    "alpnsniff.flows.tcp",
    "alpnsniff.flows.transports",
    "alpnsniff.flows.loss",
    "alpnsniff.tls.alpn",
    "alpnsniff.tls.cursor",
    "alpnsniff.tls.detect",
    "alpnsniff.tls.events",
    "alpnsniff.tls.extensions",
    "alpnsniff.tls.hello",
    "alpnsniff.tls.messages",
    "alpnsniff.tls.registry",
    "alpnsniff.tls.stream",
    "alpnsniff.quic.connection",
    "alpnsniff.quic.crypto_stream",
    "alpnsniff.quic.frames",
    "alpnsniff.quic.initial",
    "alpnsniff.quic.packets",
    "alpnsniff.quic.versions",
    "alpnsniff.quic.wire",
    "alpnsniff.dtls.detect",
    "alpnsniff.http.connect",
    "alpnsniff.http.preamble",
    "alpnsniff.keys.aead",
    "alpnsniff.keys.keylog",
    "alpnsniff.keys.messages",
    "alpnsniff.keys.quic_handshake",
    "alpnsniff.keys.stage",
    "alpnsniff.keys.store",
    "alpnsniff.keys.tls12",
    "alpnsniff.keys.tls13",
    "alpnsniff.sinks.output",
    "alpnsniff.sinks.rows",
    "alpnsniff.sinks.summary",
    "alpnsniff.sinks.table",
    "alpnsniff.sinks.text",
)


def compiled_modules() -> list[str]:
    """The planned modules that this installation loads as C extensions (found, not imported)."""
    out = []
    for name in COMPILED_MODULES:
        spec = importlib.util.find_spec(name)
        if spec is not None and isinstance(spec.loader, importlib.machinery.ExtensionFileLoader):
            out.append(name)
    return out


def build_kind() -> str:
    """``compiled (mypyc)``, ``pure Python`` or, should an install be mixed, how mixed."""
    n = len(compiled_modules())
    if n == len(COMPILED_MODULES):
        return "compiled (mypyc)"
    if n == 0:
        return "pure Python"
    return f"partly compiled ({n} of {len(COMPILED_MODULES)} modules)"
