"""Positions on the globe as points in 3-D space.

Matching needs a metric space in which nearest-neighbour search orders providers like
great-circle distance does. We place every location on a sphere of the Earth's mean
radius, in kilometres. The straight-line (chord) distance between two such points is
``c = 2 R sin(theta / 2)``, a strictly increasing function of the central angle ``theta``,
so it orders pairs exactly as great-circle distance ``R theta`` does, with no special case
at the antimeridian (longitude +180 and -180 are the same point) or at the poles.
"""

from __future__ import annotations

import logging
import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from marketplace.errors import InvalidLocationError

__all__ = [
    "EARTH_DIAMETER_KM",
    "EARTH_RADIUS_KM",
    "chord_to_great_circle_km",
    "haversine_km",
    "to_xyz_km",
    "validate_location",
]

logger = logging.getLogger(__name__)

EARTH_RADIUS_KM = 6371.0088
"""Mean Earth radius (IUGG), in kilometres."""

EARTH_DIAMETER_KM = 2.0 * EARTH_RADIUS_KM
"""The largest possible chord distance between two locations (antipodes)."""


def validate_location(lat: float, lon: float) -> None:
    """Raise :class:`InvalidLocationError` unless ``lat``/``lon`` are valid degrees.

    Latitude must lie in [-90, 90] and longitude in [-180, 180]; both must be finite.
    """
    if not (math.isfinite(lat) and -90.0 <= lat <= 90.0):
        raise InvalidLocationError(f"latitude {lat!r} is not in [-90, 90]; pass degrees north")
    if not (math.isfinite(lon) and -180.0 <= lon <= 180.0):
        raise InvalidLocationError(
            f"longitude {lon!r} is not in [-180, 180]; pass degrees east (west is negative)"
        )


def _validate_arrays(lat: NDArray[np.float64], lon: NDArray[np.float64]) -> None:
    if lat.shape != lon.shape:
        raise InvalidLocationError(f"lat has shape {lat.shape} but lon has {lon.shape}")
    bad_lat = ~(np.isfinite(lat) & (lat >= -90.0) & (lat <= 90.0))
    bad_lon = ~(np.isfinite(lon) & (lon >= -180.0) & (lon <= 180.0))
    if bad_lat.any() or bad_lon.any():
        i = int(np.flatnonzero(bad_lat | bad_lon)[0])
        validate_location(float(lat.flat[i]), float(lon.flat[i]))


def to_xyz_km(lat: ArrayLike, lon: ArrayLike) -> NDArray[np.float64]:
    """Convert degrees to Cartesian points on the Earth sphere, in kilometres.

    Parameters
    ----------
    lat, lon : array_like
        Latitudes and longitudes in degrees, of the same shape ``(n,)`` (or scalars).

    Returns
    -------
    ndarray of shape (n, 3)
        Points whose Euclidean distance is the chord distance in km. Every location of a
        pole maps to the same point, and longitude -180 to the same point as +180.

    Raises
    ------
    InvalidLocationError
        If any latitude or longitude is out of range or not finite.
    """
    la = np.atleast_1d(np.asarray(lat, dtype=np.float64))
    lo = np.atleast_1d(np.asarray(lon, dtype=np.float64))
    _validate_arrays(la, lo)
    phi = np.radians(la)
    lam = np.radians(np.where(lo == -180.0, 180.0, lo))  # one point, one representation
    cos_phi = np.where(np.abs(la) == 90.0, 0.0, np.cos(phi))  # poles: exactly on the axis
    out = np.empty((la.shape[0], 3), dtype=np.float64)
    out[:, 0] = EARTH_RADIUS_KM * cos_phi * np.cos(lam)
    out[:, 1] = EARTH_RADIUS_KM * cos_phi * np.sin(lam)
    out[:, 2] = EARTH_RADIUS_KM * np.sin(phi)
    return out


def chord_to_great_circle_km(chord_km: ArrayLike) -> NDArray[np.float64]:
    """Convert chord distances (km) to great-circle distances (km) on the same sphere."""
    c = np.asarray(chord_km, dtype=np.float64)
    ratio = np.minimum(c / EARTH_DIAMETER_KM, 1.0)
    return np.asarray(EARTH_DIAMETER_KM * np.arcsin(ratio), dtype=np.float64)


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in km between two locations given in degrees."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp = p2 - p1
    dl = math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2.0 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))
