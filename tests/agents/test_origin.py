"""Where a renter's jobs come from (or where a provider is): coordinates or a known city."""

from __future__ import annotations

import pytest

from agents.errors import UserError
from agents.origin import parse_origin
from protocol.cities import CITIES, find_city


def test_a_city_name_gives_its_coordinates_whatever_the_case_and_spacing():
    assert parse_origin("Munich").model_dump() == {"lat": 48.14, "lon": 11.58}
    assert parse_origin("  sao   PAULO ").model_dump() == {"lat": -23.55, "lon": -46.63}


def test_coordinates_are_taken_as_given():
    assert parse_origin("52.52,13.40").model_dump() == {"lat": 52.52, "lon": 13.4}
    assert parse_origin("-33.9, 151.2").model_dump() == {"lat": -33.9, "lon": 151.2}


def test_out_of_range_coordinates_say_which_range():
    with pytest.raises(UserError, match=r"latitude must be within -90\.\.90"):
        parse_origin("100,2")


def test_a_misspelt_city_gets_a_suggestion_and_an_unknown_one_an_example():
    with pytest.raises(UserError, match="did you mean Munich"):
        parse_origin("Munchen")
    with pytest.raises(UserError, match=r"e\.g\. Berlin"):
        parse_origin("Xyzzy", option="--location")


def test_every_bundled_city_is_found_by_its_own_name():
    assert all(find_city(c.name) == c for c in CITIES)
