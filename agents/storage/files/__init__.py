"""The renter's side of storage: files encrypted, erasure-coded and spread over nodes."""
