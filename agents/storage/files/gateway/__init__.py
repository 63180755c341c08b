"""The renter gateway: this machine's stored files over HTTP, for the dashboard.

``app`` builds the FastAPI app and its routes (see its docstring for the API); the parts
behind it are ``models`` (what the routes answer), ``errors`` (errors and their HTTP
statuses), ``guard`` (loopback host names and allowed origins only), ``monitor`` (health
re-checked in the background), ``uploads`` (uploads under way) and ``cli``
(``dcloud file serve``).
"""

from agents.storage.files.gateway.app import DEFAULT_PORT, create_gateway

__all__ = ["DEFAULT_PORT", "create_gateway"]
