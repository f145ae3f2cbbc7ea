"""The state of one connection in the flow table, as one named thing.

Every transport's flow (TCP, QUIC; DTLS next) moves through the same states, and changes
state in one place (its ``_set_state``), so the table can ask what a flow is without
knowing which transport it is::

    PROBING ──► HANDSHAKE ──► DECRYPTING ──► DONE
       │            │   │  └────────────────► DONE
       └──► NOT_TLS ◄┘   └──► GAVE_UP

``PROBING``
    TCP only: no TLS start seen yet; segment starts are classified (after a PROXY header,
    a STARTTLS or CONNECT preamble).
``HANDSHAKE``
    TLS (or a QUIC Initial: a QUIC flow starts here) found: both directions are parsed until
    the server answers the last ClientHello.
``DECRYPTING``
    The server answered and the run has keys for this connection: the record waits for the
    decrypted EncryptedExtensions (TLS 1.3, QUIC) or NextProtocol (TLS 1.2 NPN).
``DONE``
    The facts are known (or cannot be: a handshake stream over its cap). The table forgets
    the flow and remembers its key, so each further packet costs one look-up.
``NOT_TLS``
    Not a protocol we dissect (probe budget spent — also when the other direction's TLS
    gave no ClientHello —, SSH, plain HTTP, TLS already running at the first segment, an
    answer without a ClientHello). Remembered like ``DONE``.
``GAVE_UP``
    Could not be read on (a QUIC flow whose first client Initial does not decrypt): the
    table forgets the flow without remembering it, so a later packet may start afresh.
"""

from __future__ import annotations

from enum import Enum


class FlowState(Enum):
    PROBING = "probing"
    HANDSHAKE = "handshake"
    DECRYPTING = "decrypting"
    DONE = "done"
    NOT_TLS = "not-tls"
    GAVE_UP = "gave-up"


# The members as module names: the flows test their state per packet, and reading an enum
# member off its class costs ~75 ns in CPython 3.11 (a module name ~5 ns); compare with ``is``
# (hashing an Enum member runs Python code).
PROBING = FlowState.PROBING
HANDSHAKE = FlowState.HANDSHAKE
DECRYPTING = FlowState.DECRYPTING
DONE = FlowState.DONE
NOT_TLS = FlowState.NOT_TLS  # final, remembered like DONE
GAVE_UP = FlowState.GAVE_UP  # final, not remembered
