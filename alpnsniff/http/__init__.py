"""Plaintext that comes before TLS on a TCP connection (pure functions of bytes).

:mod:`.preamble`: the PROXY protocol header a load balancer puts first, and the starts of
protocols that never turn into TLS (SSH, plain HTTP requests). STARTTLS exchanges and HTTP
CONNECT pass through the TCP flow's probing untouched; the RFC 7639 ``ALPN`` header of a
CONNECT request will be parsed here.
"""
