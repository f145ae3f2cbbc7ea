"""Distributions over the handshake DataFrame (:func:`alpnsniff.read`): tidy in, tidy out.

:mod:`~alpnsniff.analytics.shares` computes (DataFrames with named columns, never
printouts), with one set of counting rules, written once in its docstring: a ClientHello
counts when it was seen; one that carries ECH is left out unless ``include_ech=True``;
GREASE IDs are never protocols; every result says in ``.attrs["left_out_ech"]`` how many
rows it left out.

- :func:`offers`: one row per (ClientHello, offered ID): ``row, rank, protocol``;
- :func:`offer_share`: ``[*by], protocol, client_hellos, share`` (``first=True``: first
  choices only);
- :func:`selection_share`: ``[*by], protocol, handshakes, share`` over known choices;
- :func:`outcomes`: ``[*by], selection, handshakes, share``;
- :func:`honoured`: ``[*by], handshakes, honoured, rate``; :func:`preference`: first choice
  × selection;
- :func:`timeline`: ``period, protocol, count``; :func:`compare`: ``protocol, share_a,
  share_b, change``.

:mod:`~alpnsniff.analytics.plots` draws them (matplotlib, imported when a picture is drawn).
:func:`~alpnsniff.analytics.compact.compact` stores a frame in less memory (Arrow lists,
categoricals), with the same results from every function here.
Importing this package imports pandas and pyarrow (``import alpnsniff`` does not).
"""

from __future__ import annotations

from . import plots, shares
from .compact import compact
from .plots import *  # noqa: F403  (the pictures: plots.__all__)
from .shares import *  # noqa: F403  (the numbers: shares.__all__)

__all__ = [*shares.__all__, *plots.__all__, "compact"]
