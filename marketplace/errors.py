"""Exceptions raised by the marketplace.

Every error the marketplace raises on purpose derives from :class:`MarketplaceError`, so an
edge (an HTTP handler, a CLI) can catch one class and turn it into a clean message. Each
message says what was wrong and how to fix it.

Hierarchy::

    MarketplaceError
    ├── InvalidInputError            (also a ValueError)
    │   ├── InvalidLocationError
    │   ├── InvalidResourcesError
    │   ├── InvalidProviderError
    │   ├── InvalidTimeError
    │   └── InvalidPackingError
    ├── PriceError
    │   ├── UnknownRegionError
    │   └── PriceUnavailableError
    ├── FeedError
    │   ├── FeedNotConfiguredError
    │   ├── FeedRequestError
    │   └── FeedParseError
    ├── ScorerContractError
    ├── TreeBuildError
    ├── ConfigurationError           (service settings)
    ├── NotFoundError                (404)
    ├── AuthError                    (401: signature, signer, replay)
    ├── ConflictError                (409)
    └── UnavailableError             (503)
"""

from __future__ import annotations

__all__ = [
    "AuthError",
    "ConfigurationError",
    "ConflictError",
    "FeedError",
    "FeedNotConfiguredError",
    "FeedParseError",
    "FeedRequestError",
    "InvalidInputError",
    "InvalidLocationError",
    "InvalidPackingError",
    "InvalidProviderError",
    "InvalidResourcesError",
    "InvalidTimeError",
    "MarketplaceError",
    "NotFoundError",
    "PriceError",
    "PriceUnavailableError",
    "ScorerContractError",
    "TreeBuildError",
    "UnavailableError",
    "UnknownRegionError",
]


class MarketplaceError(Exception):
    """Base class for every error the marketplace raises on purpose."""


class InvalidInputError(MarketplaceError, ValueError):
    """A caller passed a value the marketplace cannot use."""


class InvalidLocationError(InvalidInputError):
    """A latitude/longitude is out of range or not a finite number."""


class InvalidResourcesError(InvalidInputError):
    """A resource amount (CPU, memory, GPU, disk) is negative, not finite, or missing."""


class InvalidProviderError(InvalidInputError):
    """A provider record is inconsistent (duplicate id, bad price, level or reputation)."""


class InvalidTimeError(InvalidInputError):
    """A datetime is naive or outside the range a price source covers."""


class InvalidPackingError(InvalidInputError):
    """A packing instance is inconsistent (dimensions, unknown candidates, duplicate ids)."""


class PriceError(MarketplaceError):
    """An electricity price could not be determined."""


class UnknownRegionError(PriceError):
    """The price source has no region with that id."""


class PriceUnavailableError(PriceError):
    """The price source has the region but no price for that time."""


class FeedError(MarketplaceError):
    """A real electricity-price feed could not be used."""


class FeedNotConfiguredError(FeedError):
    """The feed needs a setting that is missing (for example an API token)."""


class FeedRequestError(FeedError):
    """The feed answered with an error or could not be reached."""


class FeedParseError(FeedError):
    """The feed's response is not in the format the adapter understands."""


class ScorerContractError(MarketplaceError):
    """A pluggable scorer broke its contract (it must never return less than the distance)."""


class TreeBuildError(MarketplaceError):
    """The matching index could not be built."""


# --------------------------------------------------------------------- the service
# Errors of the HTTP service; `marketplace.api.errors` maps each to a 4xx status.


class ConfigurationError(MarketplaceError):
    """A setting is missing or unusable (database URL, chain, deployments file)."""


class NotFoundError(MarketplaceError):
    """The provider or job asked for does not exist."""


class AuthError(MarketplaceError):
    """A signed request's signature, signer or timestamp is not acceptable."""


class ConflictError(MarketplaceError):
    """The request conflicts with the current state (e.g. heartbeat before registering)."""


class UnavailableError(MarketplaceError):
    """The service cannot answer now (e.g. the matcher is busy); retry shortly."""
