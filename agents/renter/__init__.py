"""dcloud renter."""
