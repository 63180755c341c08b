"""Renters' own images for tests, built in the real engine with no registry
(``agents.image.build``: a local base plus files, as a renter's ``docker build`` does)."""

from __future__ import annotations

from agents.image import build

BASE = build.BASE
build_image = build.build_image
