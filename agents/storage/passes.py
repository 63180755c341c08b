"""Running an on-chain pass (an auditor's or a node's) again and again until stopped."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

logger = logging.getLogger(__name__)


def run_passes(
    step: Callable[[], object], stop: threading.Event, interval: float, name: str
) -> None:
    """Call `step` every `interval` seconds until `stop` is set; a failing pass is logged
    (as `name`) and retried next time."""
    while not stop.is_set():
        try:
            step()
        except Exception:  # a pass that fails (chain down, ...) is retried next time
            logger.exception("%s pass failed; retrying in %.1f s", name, interval)
        stop.wait(interval)
