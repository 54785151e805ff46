"""`python -m api` serves the API with uvicorn; `python -m api migrate [revision]` migrates;
`python -m api config show` prints the effective settings."""

from __future__ import annotations

import argparse
import sys

from pydantic import ValidationError
from pydantic_settings import SettingsError

from api import logs, migrate
from api.settings import Settings
from telemetry.settings import explain
from telemetry.settings_show import add_config_command, epilog, render


def main(argv: list[str] | None = None) -> int:
    """Run the server or a migration command."""
    parser = argparse.ArgumentParser(
        prog="python -m api", description=__doc__, epilog=epilog(Settings, "python -m api")
    )
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("serve", help="serve HTTP (the default)")
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

    uvicorn.run(
        create_app(settings),
        host=settings.api.host,
        port=settings.api.port,
        log_config=None,
        access_log=False,
        proxy_headers=True,
        forwarded_allow_ips=settings.api.trusted_proxies,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
