"""dcloud storage."""
