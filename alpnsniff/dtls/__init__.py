"""DTLS (RFC 6347, RFC 9147): recognised on UDP and counted; not dissected yet."""
