"""``python -m espnow_sec.air`` is ``espnow-sec-air``."""

from espnow_sec.air.server import main

raise SystemExit(main())
