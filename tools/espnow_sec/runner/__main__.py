"""``python -m espnow_sec.runner`` is ``espnow-sec-net``."""

from espnow_sec.runner.cli import main

raise SystemExit(main())
