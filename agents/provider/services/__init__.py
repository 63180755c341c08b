"""Services: renters' long-running containers, leased rather than run to an end.

- :class:`~agents.provider.services.runtime.ServiceRuntime` deploys, publishes, reconciles
  and removes them (Docker, hardened as jobs are; isolation in ``runtime.py``; the
  private network and order of a deployment's several containers in ``stack.py``);
- :class:`~agents.provider.services.supervisor.Supervisor` checks their health and
  restarts them with a backoff (the state machine is in ``health.py``);
- :class:`~agents.provider.services.store.ServiceStore` keeps their records in SQLite.
"""
