"""A terminal table of handshakes (rich, no markup interpretation of wire strings)."""

from __future__ import annotations

from typing import TextIO

from ..records import Handshake
from .rows import row


def print_table(items: list[tuple[str, Handshake]], out: TextIO) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    for name in ("frame", "client", "server", "sni", "offered", "selected", "selection", "tls"):
        table.add_column(name, overflow="fold", no_wrap=name in ("frame", "client", "server"))
    for capture, h in items:
        r = row(h, capture)
        table.add_row(
            str(r["frame"]),
            Text(f"{r['client_ip']}:{r['client_port']}"),
            Text(f"{r['server_ip']}:{r['server_port']}"),
            Text(r["sni"] or ""),
            Text(",".join(r["alpn_offered"])),
            Text(r["alpn_selected"] or ""),
            Text(r["selection"]),
            Text(r["tls_version"] or ""),
        )
    console = Console(file=out, highlight=False, markup=False, emoji=False)
    if not console.is_terminal:
        console.width = 200  # a file or a pipe: do not fold addresses at 80 columns
    console.print(table)
