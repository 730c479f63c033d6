"""Scad's ``disagg`` (its Cython binding of the C runtime), importable as ``disagg`` for the programs
that star-import it (``from disagg import *``): the action and transport classes under their
Scad names. Element code receives its action from the engine; nothing here starts one.

``LibdAction`` is :class:`scadrt.action.Action` (Scad's constructor took a condition variable and
an activation id for the C runtime; ours takes the element's name and its transports).
``LibdTransportRDMA`` and ``LibdTransport`` are :class:`scadrt.transports.base.Transport`, what
``action.get_transport(name, "rdma")`` returns, so ``isinstance`` checks hold.
"""

from scadrt.action import Action as LibdAction
from scadrt.transports.base import Transport as LibdTransport
from scadrt.transports.base import Transport as LibdTransportRDMA

__all__ = ["LibdAction", "LibdTransport", "LibdTransportRDMA"]
