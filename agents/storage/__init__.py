"""dcloud storage: the operator's storage node (``node``) and the renter's files (``files``).

What both sides use sits at this level: ``chain`` (StorageEscrow), ``market`` (the
marketplace's storage routes), ``wire`` (signed shard requests), ``passes`` and
``cli_common``.
"""
