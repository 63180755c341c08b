"""Renters' own images on a provider: fetched from the storage network, checked, loaded
into the engine and kept in a cache with a quota (see ``protocol.images``).

- ``offer``: which images a push may name (:func:`~.offer.check_image`, cheap) and the
  pull a push triggers (:func:`~.offer.ensure_image`);
- ``pull``: :class:`~.pull.ImagePuller`, the whole pull of one pinned image;
- ``source``: the push's source checked against the pinned digest before any fetch;
- ``layers``: grants posted, layers fetched in parallel and hashed to their diff_ids;
- ``tarcheck``: a layer tarball inspected for paths, links and files it may not hold;
- ``load``: the archive ``docker load`` reads, written by the agent, and the layer
  chains the engine already holds;
- ``cache``: pulled images recorded, evicted least recently used under the quota;
- ``harden``: what an image may not bring into its container (host volumes).
"""
