"""The renter dashboard: server-rendered pages with a little JavaScript, served locally.

``router`` (mounted at ``/dashboard``) serves the pages, their static files, a config view
for the browser (chain id, contract addresses and ABIs, escrow windows), hourly region
price history, and on local devnets a whitelisted JSON-RPC proxy to the chain
(:mod:`marketplace.dashboard.rpc`). Everything else the pages show comes from the public
API (``/v1/...``), the chain, and the provider agents, which the browser asks directly.
"""

from __future__ import annotations

from marketplace.dashboard.routes import router

__all__ = ["router"]
