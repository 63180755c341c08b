"""Provider agent, storage node and renter client: CLIs over library code.

Agents talk to the marketplace over HTTP and to the chain through ``protocol``;
they never import marketplace internals.
"""
