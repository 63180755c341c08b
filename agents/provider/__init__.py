"""dcloud provider."""
