"""Renters' own images: push them to the storage network, list and remove them, and grant
one provider what it needs to pull one (``dcloud image``; see :mod:`agents.image.images`)."""
