"""The renter's services: long-running containers at stable names, paid by the second.

- :mod:`~agents.service.client`: the SDK (:class:`Services`): quote, deploy, ls, status,
  logs, top-up, stop.
- :mod:`~agents.service.lease`: the renter's side of LeaseEscrow (open, top up, close).
- :mod:`~agents.service.peer`: the provider: the signed push, its view, its logs.
- :mod:`~agents.service.rates`: rates as typed ("0.001/h") and as leases count them.
- :mod:`~agents.service.inputs`: input files and folders.
- :mod:`~agents.service.manifest`: deployments of several containers from a YAML manifest
  (``manifest_yaml``: the YAML itself, with the line of each error).
- :mod:`~agents.service.gateway`: the URLs a service answers at, and checking them.
- :mod:`~agents.service.records`: the renter's record of each lease it opened.
- :mod:`~agents.service.views`: what the SDK returns.
- :mod:`~agents.service.cli`: ``dcloud service``.
"""

from __future__ import annotations

from agents.service.client import Services
from agents.service.gateway import Gateway
from agents.service.inputs import collect_inputs
from agents.service.rates import fmt_rate, parse_rate
from agents.service.views import Deployed, ServiceView, Stopped, TopUp

__all__ = [
    "Deployed",
    "Gateway",
    "ServiceView",
    "Services",
    "Stopped",
    "TopUp",
    "collect_inputs",
    "fmt_rate",
    "parse_rate",
]
