"""The dcloud marketplace: energy-weighted matching, knapsack packing and electricity prices.

The algorithmic modules (``matching``, ``packing``, ``energy``) are pure: they do no I/O
beyond reading the price data bundled with the package, so the service can call them from
request handlers and tests can compare them against brute-force oracles.
"""
