"""``python -m device_sims``: see ``device_sims.cli``."""

from device_sims.cli import main

raise SystemExit(main())
