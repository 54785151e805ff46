"""``python -m analytics`` entry point."""

from analytics.cli import main

raise SystemExit(main())
