"""Key logs and the decryption stage: what a server selected when only keys can tell.

* :mod:`~alpnsniff.keys.keylog`: NSS key log files, text and pcapng DSBs → secrets by
  client random;
* :mod:`~alpnsniff.keys.tls13`: the TLS 1.3 server flight (EncryptedExtensions' ALPN);
* :mod:`~alpnsniff.keys.quic_handshake`: the QUIC Handshake packet space (v1, v2);
* :mod:`~alpnsniff.keys.tls12`: TLS ≤ 1.2 client records after ChangeCipherSpec (NPN);
* :mod:`~alpnsniff.keys.store`: the run's :class:`~alpnsniff.keys.store.KeyStore`, a key
  log plus the secrets the capture source carries in-band.

The messages they decrypt are parsed by :mod:`alpnsniff.tls.messages` (EncryptedExtensions,
NextProtocol), as the hellos are by :mod:`alpnsniff.tls.hello`.

All sans-I/O except :meth:`KeyLog.load`; nothing here ever prints key material.
"""
