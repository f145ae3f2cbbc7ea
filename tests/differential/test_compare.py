"""The comparator itself: every kind of difference is found, and equal inputs give none.

Hand-built rows and records (no capture needed): a comparator that never reports anything
would make the differential test pass on any alpnsniff, so each rule is shown to fire.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from compare import compare_tcp
from tshark_view import TsharkAlert, TsharkHello, TsharkView

from alpnsniff.records import Handshake, Selection

CLIENT, SERVER = ("10.0.0.1", 50000), ("2001:db8::0:1", 443)


def _row(frame: int, hs_type: int, alpn: tuple[bytes, ...] = (), **kw: Any) -> TsharkHello:
    src, dst = (CLIENT, SERVER) if hs_type == 1 else (SERVER, CLIENT)
    base: dict[str, Any] = dict(
        frame=frame, proto="tls", transport="tcp", stream=0, src=src[0], dst=dst[0],
        sport=src[1], dport=dst[1], hs_type=hs_type, alpn=alpn, sni="a.example" if hs_type == 1 else None,
        is_hrr=False, sslv2=False, reasm_frames=(frame,),
    )  # fmt: skip
    base.update(kw)
    return TsharkHello(**base)


def _rec(frame: int, offered: tuple[bytes, ...], **kw: Any) -> Handshake:
    base: dict[str, Any] = dict(
        ts_ns=0, frame=frame, transport="tcp", ip_version=4, client_ip=CLIENT[0],
        client_port=CLIENT[1], server_ip="2001:db8::1", server_port=SERVER[1], sni="a.example",
        alpn_offered_raw=offered, alpn_selected_raw=None, selection=Selection.UNSEEN,
        tls_version=None, client_version="1.2", cipher_suite=None, ech=False, ech_config_id=None,
        ech_payload_len=None, npn=False, npn_server=(), alps=(), extensions=(16,), grease=False,
        sslv2=False, hello_retry=False, alert=None, violation=None, server_frame=None,
    )  # fmt: skip
    base.update(kw)
    return Handshake(**base)


def _view(*rows: TsharkHello, alerts: tuple[TsharkAlert, ...] = ()) -> TsharkView:
    return TsharkView(Path("x.pcap"), rows, alerts, 0, "", True)


def _kinds(view: TsharkView, recs: list[Handshake]) -> list[tuple[str, int]]:
    return [(d.kind, d.frame) for d in compare_tcp(view, recs).differences]


H2 = (b"h2", b"http/1.1")
VISIBLE = dict(selection=Selection.VISIBLE, alpn_selected_raw=b"h2", server_frame=6)


def test_equal_handshake_gives_no_difference() -> None:
    cmp = compare_tcp(_view(_row(4, 1, H2), _row(6, 2, (b"h2",))), [_rec(4, H2, **VISIBLE)])
    assert cmp.differences == []
    assert cmp.counts["ch_equal"] == 1
    assert cmp.counts["sh_alpn_equal"] == 1


def test_offer_order_and_octets_matter() -> None:
    assert _kinds(_view(_row(4, 1, H2)), [_rec(4, (b"http/1.1", b"h2"))]) == [("alpn", 4)]
    assert _kinds(_view(_row(4, 1, (b"h2\xff",))), [_rec(4, (b"h2",))]) == [("alpn", 4)]


def test_frame_missing_extra_sni_sslv2() -> None:
    assert _kinds(_view(_row(4, 1, H2)), [_rec(5, H2)]) == [("frame", 4)]
    assert _kinds(_view(_row(4, 1, H2)), []) == [("missing", 4)]
    assert _kinds(_view(), [_rec(4, H2)]) == [("extra", 4)]
    assert _kinds(_view(_row(4, 1, H2)), [_rec(4, H2, sni="b.example")]) == [("sni", 4)]
    sslv2 = _row(4, 1, proto="sslv2", sslv2=True, sni=None)
    assert _kinds(_view(sslv2), [_rec(4, (), sni=None)]) == [("sslv2", 4)]


def test_server_hello_rules() -> None:
    ch = _row(4, 1, H2)
    assert _kinds(_view(ch, _row(6, 2, (b"h2",))), [_rec(4, H2)]) == [("sh_missing", 6)]
    wrong = dict(VISIBLE, alpn_selected_raw=b"http/1.1")
    assert _kinds(_view(ch, _row(6, 2, (b"h2",))), [_rec(4, H2, **wrong)]) == [("sh_alpn", 6)]
    assert _kinds(_view(ch, _row(6, 2)), [_rec(4, H2, **VISIBLE)]) == [("sh_alpn", 6)]
    assert _kinds(_view(ch), [_rec(4, H2, **VISIBLE)]) == [("sh_extra", 6)]


def test_alert_rules() -> None:
    ch = _row(4, 1, H2)
    alert = TsharkAlert(6, 0, SERVER[0], CLIENT[0], SERVER[1], CLIENT[1], 2, 120)
    rejected = _rec(4, H2, selection=Selection.REJECTED, alert=120, server_frame=6)
    assert _kinds(_view(ch, alerts=(alert,)), [rejected]) == []
    assert _kinds(_view(ch, alerts=(alert,)), [_rec(4, H2)]) == [("alert_missing", 6)]
    assert _kinds(_view(ch), [rejected]) == [("alert_extra", 4)]
    # an alert 120 from the client is not the server's rejection
    swapped = dataclasses.replace(
        alert, src=CLIENT[0], dst=SERVER[0], sport=CLIENT[1], dport=SERVER[1]
    )
    assert _kinds(_view(ch, alerts=(swapped,)), [rejected]) == [("alert_extra", 4)]


def test_selection_without_server_alpn() -> None:
    ch = _row(4, 1, H2)
    sh12, sh13 = _row(6, 2), _row(6, 2, supported_versions=(0x0304,))
    hrr = _row(6, 2, supported_versions=(0x0304,), is_hrr=True)
    answered = dict(server_frame=6)
    none = _rec(4, H2, selection=Selection.NONE, **answered)
    encrypted = _rec(4, H2, selection=Selection.ENCRYPTED, **answered)
    retried = _rec(4, H2, selection=Selection.RETRIED, **answered)
    assert _kinds(_view(ch, sh12), [none]) == []
    assert _kinds(_view(ch, sh12), [encrypted]) == [("sh_selection", 6)]
    assert _kinds(_view(ch, sh13), [encrypted]) == []
    assert _kinds(_view(ch, sh13), [none]) == [("sh_selection", 6)]
    assert _kinds(_view(ch, hrr), [retried]) == []
    assert _kinds(_view(ch, hrr), [encrypted]) == [("sh_selection", 6)]
