#!/usr/bin/env python3
"""Thin shim: ``python tools/keygen.py ...`` runs ``espnow_sec.keygen`` (``espnow-sec-keygen``).

Works after ``pip install -e .`` and also from a bare checkout (it puts ``tools/`` on sys.path).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from espnow_sec.keygen import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
