"""`python -m marketplace.dashboard`: copy the dashboard's front-end files from node_modules."""

from __future__ import annotations

import sys

from marketplace.dashboard.assets import main

sys.exit(main())
