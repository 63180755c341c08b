"""`python -m marketplace`: run the marketplace service (settings from DCLOUD_* variables)."""

from __future__ import annotations

import sys

import uvicorn
from pydantic import ValidationError

from marketplace.app import create_app
from marketplace.errors import MarketplaceError
from marketplace.settings import Settings
from protocol.logs import configure_logging


def main() -> int:
    configure_logging()
    try:
        settings = Settings()
    except ValidationError as exc:
        print(f"marketplace: bad setting: {exc}", file=sys.stderr)
        return 2
    try:
        app = create_app(settings)
        uvicorn.run(app, host=settings.host, port=settings.port, log_config=None)
    except MarketplaceError as exc:
        print(f"marketplace: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
