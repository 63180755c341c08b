"""Services: long-running containers at stable names, paid by the second through a lease.

- :mod:`~marketplace.services.names`: who owns a name, and when it may be deployed again.
- :mod:`~marketplace.services.placement`: the energy-weighted placement over the coming
  hours and the rate per second.
- :mod:`~marketplace.services.deployments`: recording a deployment (reserving capacity),
  stopping one.
- :mod:`~marketplace.services.catalog`: statuses, lookups, giving capacity back.
- :mod:`~marketplace.services.reports`: providers' signed reports.
- :mod:`~marketplace.services.expiry`: reservations no accepted lease took up.
- :mod:`~marketplace.services.prober`: health checks, and the worker that runs them.
- :mod:`~marketplace.services.serving`: ``reportServing`` on LeaseEscrow.
- :mod:`~marketplace.services.leases`: LeaseEscrow's events into the tables.
- :mod:`~marketplace.services.routes`: what the ingress gateway routes.
"""
