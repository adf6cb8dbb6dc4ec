"""``python -m blender_addon build``: see :mod:`blender_addon.build`."""

from .build import main

raise SystemExit(main())
