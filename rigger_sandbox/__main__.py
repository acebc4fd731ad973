"""``python -m rigger_sandbox``: the same command line as ``rigger-sandbox``."""

from .cli import main

raise SystemExit(main())
