"""Distributions over the handshake DataFrame (``alpnsniff.read``): tidy in, tidy out.

Offer shares leave out ClientHellos that carry ECH unless ``include_ech=True`` (their real
offer is encrypted; see the README).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


def offer_shares(df: pd.DataFrame, *, include_ech: bool = False) -> pd.DataFrame:
    """Per protocol ID: ClientHellos offering it, and their share of all counted ClientHellos.

    A ClientHello without ALPN counts under ``(no ALPN)``. Columns: ``protocol``,
    ``client_hellos``, ``share``; sorted by count, largest first.
    """
    import pandas as pd

    base = df if include_ech else df[~df["ech"]]
    offers = base["alpn_offered"].map(lambda xs: sorted(set(xs)) if len(xs) else ["(no ALPN)"])
    counts = offers.explode().value_counts()
    out = pd.DataFrame({"protocol": counts.index, "client_hellos": counts.to_numpy()})
    out["share"] = out["client_hellos"] / max(len(base), 1)
    return out.reset_index(drop=True)


def selected_shares(df: pd.DataFrame) -> pd.DataFrame:
    """Per protocol the server chose (``visible`` or ``decrypted`` selections only)."""
    import pandas as pd

    known = df[df["selection"].isin(["visible", "decrypted"]) & df["alpn_selected"].notna()]
    counts = known["alpn_selected"].value_counts()
    out = pd.DataFrame({"protocol": counts.index, "handshakes": counts.to_numpy()})
    out["share"] = out["handshakes"] / max(len(known), 1)
    return out.reset_index(drop=True)


def outcomes(df: pd.DataFrame) -> pd.Series[Any]:
    """Handshakes per ``selection`` value, every value listed (zeros included)."""
    return df["selection"].value_counts(sort=False)


def plot_offer_shares(df: pd.DataFrame, *, include_ech: bool = False, top: int = 12) -> Any:
    """Horizontal bar chart of :func:`offer_shares` (matplotlib Axes)."""
    import matplotlib.pyplot as plt

    shares = offer_shares(df, include_ech=include_ech).head(top).iloc[::-1]
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(shares) + 1))
    ax.barh(shares["protocol"], shares["share"] * 100)
    ax.set_xlabel("% of ClientHellos offering it")
    ax.set_title("ALPN offers" + (" (ECH included)" if include_ech else " (ECH left out)"))
    fig.tight_layout()
    return ax
