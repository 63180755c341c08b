"""The dcloud marketplace: matches renters' jobs to providers by distance and grid energy
price, packs them into free capacity, and follows the escrow contracts on chain.

The folders are the layers; a module imports only from its own layer or those below
(``tests/marketplace/test_layers.py`` and ``tools/import_cycles.py`` check it):

- ``app.py``: the composition root (builds the service and the FastAPI app; its lifespan
  runs the chain indexer and the scheduler).
- ``api/`` and ``dashboard/``: HTTP. Only they (and ``app.py``) import ``api/``.
- ``compute/``, ``storage/``, ``chain/``: the domain, over the database (``store/``) and
  the chain; ``service.py`` is the state they share.
- ``matching/``, ``packing/``, ``geo.py``, ``reputation.py``: pure algorithms with no I/O,
  so request handlers can call them and tests can compare them against brute force.
- ``energy/``: electricity prices and energy levels. Pure except at its edges: the
  bundled price series is read from the package, ``energy/entsoe.py`` fetches ENTSO-E
  prices over HTTP, and ``energy/generate_data.py`` (a maintainer's script) writes the
  bundled series.
"""
