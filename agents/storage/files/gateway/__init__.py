"""The renter gateway: this machine's stored files over HTTP, for the dashboard."""
