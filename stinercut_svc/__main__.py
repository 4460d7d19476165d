"""``python -m stinercut_svc`` and the ``stinercut`` entry point: see :mod:`.cli`.

``stinercut`` alone (or ``stinercut serve``) runs the service; ``stinercut
migrate`` upgrades the schema; ``stinercut tokens ...`` manage API tokens;
``stinercut jobs ...``, ``render`` and ``health`` are clients of a running service.
"""

from __future__ import annotations

import sys

from .cli import main
from .cli.serve import EXIT_CONFIG, serve

__all__ = ["EXIT_CONFIG", "main", "serve"]

if __name__ == "__main__":
    sys.exit(main())
