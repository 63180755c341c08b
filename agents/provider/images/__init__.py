"""Renters' own images on a provider: fetched from the storage network, checked, loaded
into the engine and kept in a cache with a quota (see ``protocol.images``)."""
