"""Plaintext that comes before TLS on a TCP connection (pure functions of bytes).

:mod:`.preamble`: the PROXY protocol header a load balancer puts first, and the starts of
protocols that never turn into TLS (SSH, plain HTTP requests). :mod:`.connect`: an HTTP/1
CONNECT request with RFC 7639's ``ALPN`` header, and the proxy's answer; the TCP flow keeps
their facts for the TLS that follows through the tunnel. STARTTLS exchanges pass through the
flow's probing untouched.
"""
