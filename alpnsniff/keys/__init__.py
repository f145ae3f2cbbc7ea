"""Key logs and the decryption stage: what a server selected when only keys can tell.

* :mod:`~alpnsniff.keys.keylog`: NSS key log files, text and pcapng DSBs → secrets by
  client random;
* :mod:`~alpnsniff.keys.tls13`: the TLS 1.3 server flight (EncryptedExtensions' ALPN);
* :mod:`~alpnsniff.keys.quic_handshake`: the QUIC Handshake packet space (v1, v2);
* :mod:`~alpnsniff.keys.tls12`: TLS ≤ 1.2 client records after ChangeCipherSpec (NPN).

All sans-I/O except :meth:`KeyLog.load`; nothing here ever prints key material.
"""
