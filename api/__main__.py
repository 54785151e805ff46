"""`python -m api` serves the API with uvicorn; `python -m api migrate [revision]` migrates;
`python -m api config show` prints the effective settings."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

from pydantic import ValidationError
from pydantic_settings import SettingsError

from api import logs, migrate
from api.settings import Settings
from telemetry.settings import explain
from telemetry.settings_show import add_config_command, epilog, render

log = logging.getLogger("api")


def main(argv: list[str] | None = None) -> int:
    """Run the server or a migration command."""
    parser = argparse.ArgumentParser(
        prog="python -m api", description=__doc__, epilog=epilog(Settings, "python -m api")
    )
    sub = parser.add_subparsers(dest="command")
    serve = sub.add_parser("serve", help="serve HTTP (the default)")
    serve.add_argument(
        "--workers",
        type=int,
        default=None,
        help="worker processes (default: api.workers, 1); several are for PostgreSQL",
    )
    up = sub.add_parser("migrate", help="apply migrations up to a revision (default: head)")
    up.add_argument("revision", nargs="?", default="head")
    down = sub.add_parser("downgrade", help="revert migrations down to a revision")
    down.add_argument("revision")
    add_config_command(sub)
    args = parser.parse_args(argv)
    logs.configure()
    try:
        settings = Settings()
    except (ValidationError, SettingsError) as exc:
        print(explain(Settings, exc), file=sys.stderr)
        return 2
    if args.command == "config":
        print(render(settings, as_json=args.json))
        return 0
    if args.command == "migrate":
        migrate.upgrade(settings.database_url, args.revision)
        return 0
    if args.command == "downgrade":
        migrate.downgrade(settings.database_url, args.revision)
        return 0
    import uvicorn

    from api.main import create_app

    workers = getattr(args, "workers", None) or settings.api.workers
    options: dict[str, Any] = {
        "host": settings.api.host,
        "port": settings.api.port,
        "log_config": None,
        "access_log": False,
        "proxy_headers": True,
        "forwarded_allow_ips": settings.api.trusted_proxies,
    }
    if workers == 1:
        uvicorn.run(create_app(settings), **options)
        return 0
    if settings.database_url.startswith("sqlite"):
        log.warning(
            "%d workers on SQLite: writers of different processes wait on SQLite's busy "
            "timeout (polling); one worker is faster there",
            workers,
        )
    # Migrate once here, not in every worker at once; the workers build the app from the
    # same environment (api.main:worker_app), with nothing to migrate.
    if settings.api.migrate_on_startup:
        migrate.upgrade(settings.database_url)
    os.environ["EQUIPMON_API__MIGRATE_ON_STARTUP"] = "false"
    uvicorn.run("api.main:worker_app", factory=True, workers=workers, **options)
    return 0


if __name__ == "__main__":
    sys.exit(main())
