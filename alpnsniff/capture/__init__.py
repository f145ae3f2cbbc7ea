"""Capture layer: pcap, pcapng, compressed files, stdin. I/O only, no decoding."""
