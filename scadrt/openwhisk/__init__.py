"""Elements as Apache OpenWhisk actions (Scad's deployment path).

``server``  the action runtime: one element behind OpenWhisk's action protocol (``/init``,
            ``/run``) and Scad's extensions (transports in the run body, ``PUT
            /action/<aid>/transport/<name>``), run as ``scadc serve-action``
``client``  a client of OpenWhisk's REST API for Scad applications (``scadc wsk``)
"""

from __future__ import annotations

__all__: list[str] = []
