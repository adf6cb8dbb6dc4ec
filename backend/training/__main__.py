"""``python -m backend.training``: the same flags as ``python -m backend train``."""

from .cli import main

raise SystemExit(main())
