"""``python -m nagref``: the same as the ``nagref`` command."""

from __future__ import annotations

from .cli import main

raise SystemExit(main())
