"""Where a renter is: ``lat,lon`` or the name of a city from the bundled list."""

from __future__ import annotations

import difflib

from agents.errors import UserError
from protocol.cities import CITIES, find_city
from protocol.schemas import Location


def parse_origin(text: str, *, option: str = "--origin") -> Location:
    """A :class:`Location` from ``52.52,13.40`` or ``Berlin``.

    Raises:
        UserError: neither coordinates in range nor a known city (the message suggests
            close names).
    """
    lat_text, sep, lon_text = text.partition(",")
    if sep:
        try:
            lat, lon = float(lat_text), float(lon_text)
        except ValueError:
            pass
        else:
            if -90 <= lat <= 90 and -180 <= lon <= 180:
                return Location(lat=lat, lon=lon)
            raise UserError(
                f"{option} {text!r}: latitude must be within -90..90 and longitude within -180..180"
            )
    city = find_city(text)
    if city is not None:
        return Location(lat=city.lat, lon=city.lon)
    names = [c.name for c in CITIES]
    close = difflib.get_close_matches(text.strip().title(), names, n=3, cutoff=0.6)
    hint = f"did you mean {', '.join(close)}? " if close else "e.g. Berlin, Munich, Paris, Tokyo; "
    raise UserError(
        f"{option} {text!r} is neither lat,lon (like 52.52,13.40) nor a city dcloud knows; "
        f"{hint}{len(names)} cities are known"
    )
