"""aioquic server and client in one process, one connection, for the key tests' captures.

usage: quic_pair.py PORT CIPHER_SUITE_HEX VERSION KEYLOG CERT KEY
(CIPHER_SUITE_HEX 1301/1302/1303; VERSION 1 or 2). The client offers and the server
accepts only that suite; ALPN h3 on both sides; the client's secrets go to KEYLOG.
"""

import asyncio
import ssl
import sys

from aioquic.asyncio import connect, serve
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.packet import QuicProtocolVersion
from aioquic.tls import CipherSuite

VERSIONS = {"1": QuicProtocolVersion.VERSION_1, "2": QuicProtocolVersion.VERSION_2}


async def main() -> None:
    port, suite, version, keylog, cert, key = sys.argv[1:7]
    suites = [CipherSuite(int(suite, 16))]
    versions = [VERSIONS[version]]
    server_cfg = QuicConfiguration(
        is_client=False, alpn_protocols=["h3"], cipher_suites=suites, supported_versions=versions
    )
    server_cfg.load_cert_chain(cert, key)
    server = await serve("127.0.0.1", int(port), configuration=server_cfg)
    client_cfg = QuicConfiguration(
        is_client=True,
        alpn_protocols=["h3"],
        cipher_suites=suites,
        supported_versions=versions,
        verify_mode=ssl.CERT_NONE,
        server_name="localhost",
    )
    with open(keylog, "a", buffering=1) as fh:
        client_cfg.secrets_log_file = fh
        async with connect("127.0.0.1", int(port), configuration=client_cfg) as client:
            await client.ping()
    server.close()


asyncio.run(main())
