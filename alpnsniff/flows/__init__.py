"""Connections in handshake, for every transport: the flow table and the flows.

- :mod:`.table` — one :class:`~.table.FlowTable` for every transport: keys both ways,
  eviction by idle time, count and bytes, ``tick(now_ns)``, remembered finished keys.
- :mod:`.state` — :class:`~.state.FlowState`, one per connection.
- :mod:`.answers` — the waiting ClientHellos and answers, written once for all transports.
- :mod:`.outcome` — what an answer means (``selection``, violations) and the record.
- :mod:`.tcp`, :mod:`.quic` — the transports' flows; :mod:`.transports` — how a UDP
  datagram is recognised (QUIC; DTLS next).
"""
