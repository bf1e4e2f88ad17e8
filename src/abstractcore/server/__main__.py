"""``python -m abstractcore.server``: the same as ``abstractcore serve``."""

from __future__ import annotations

import sys

from abstractcore.server.cli import main

if __name__ == "__main__":
    sys.exit(main())
