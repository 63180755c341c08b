"""dcloud devnet."""
