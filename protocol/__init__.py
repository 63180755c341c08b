"""What the marketplace and the agents share: wire schemas, signing, chain bindings."""
