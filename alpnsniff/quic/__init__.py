"""quic."""
