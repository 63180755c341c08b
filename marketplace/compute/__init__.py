"""Compute jobs and providers: registration, job records, batch scheduling (match, pack,
assign), dispute verifiers."""
