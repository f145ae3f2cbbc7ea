"""QUIC Initial packets, sans-I/O: from UDP payloads to ClientHello/ServerHello bytes.

Modules, each one job: ``versions`` (version table, salts, cheap long-header test),
``wire`` (varints), ``packets`` (split a datagram into packets), ``initial`` (keys,
header protection, AEAD open, Retry tag), ``frames`` (Initial frames), ``crypto_stream``
(CRYPTO reassembly), ``connection`` (per-connection state machine and events).
Nothing is imported here, so ``versions.looks_like_quic_long_header`` stays cheap to load.
"""
