"""The marketplace's side of the chain: the contract client, the indexer that follows the
contracts into the database, and the matcher key that signs assignments for the escrow."""
