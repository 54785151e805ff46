"""A simulated machine controller that is an OPC UA server (asyncua's server, a real process).

Address space: ``Objects/<site>/<asset>/<sensor>`` (folders and Double variables in namespace
``urn:equipmon:device-sims``), string node ids ``ns=<i>;s=<site>.<asset>.<sensor>`` so that a
client can name nodes directly or browse. Every variable changes each ``1 / rate_hz`` seconds
(a slow wave plus noise, as a running machine's readings do); a variable named in ``bad`` keeps
changing but with status ``BadSensorFailure``, and one named in ``uncertain`` with
``UncertainLastUsableValue`` — what a PLC reports for a broken or doubtful transmitter.

Security: ``none`` offers only the unsecured endpoint; ``basic256sha256`` offers only
Basic256Sha256 (Sign and SignAndEncrypt) with a self-signed certificate made in ``cert_dir``.
With a user name set, every session must log in with it: note that an asyncua server offering
only Basic256Sha256 still lets a client open a session over an unsecured channel unless the
user check refuses it, so the user manager here refuses anonymous sessions and sessions whose
channel is not secured when the server is secured.

Run: ``python -m device_sims opcua --port 4840 --assets 25 --sensors 8``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from asyncua import Server, ua
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server.user_managers import UserManager
from asyncua.ua.status_codes import StatusCodes

log = logging.getLogger(__name__)

NAMESPACE_URI = "urn:equipmon:device-sims"
SENSORS = ("flow", "pressure", "current", "vibration", "bearing_temp", "speed", "power", "level")


@dataclass
class OpcUaSimConfig:
    """What the simulated server offers."""

    port: int
    site: str = "plant-a"
    assets: int = 25
    sensors: int = 8
    rate_hz: float = 1.0
    security: str = "none"  # or "basic256sha256"
    username: str | None = None
    password: str | None = None
    cert_dir: Path | None = None
    names: list[str] = field(default_factory=list)  # the first machines' names (machine-NN)
    bad: set[str] = field(default_factory=set)  # "<asset>.<sensor>" with a Bad status
    uncertain: set[str] = field(default_factory=set)
    seed: int = 1


class _Users(UserManager):  # type: ignore[misc]  # asyncua is untyped here (pyproject)
    """One user name and password; with ``require_certificate`` (a secured server) a session
    without a client certificate, that is over an unsecured channel, is refused too."""

    def __init__(self, username: str, password: str, *, require_certificate: bool) -> None:
        self._username, self._password = username, password
        self._require_certificate = require_certificate

    def get_user(
        self,
        iserver: Any,
        username: str | None = None,
        password: str | None = None,
        certificate: Any = None,
    ) -> User | None:
        if self._require_certificate and certificate is None:
            return None
        if username == self._username and password == self._password:
            return User(role=UserRole.User, name=username)
        return None  # asyncua answers BadUserAccessDenied


def node_id(namespace: int, site: str, asset: str, sensor: str) -> str:
    """The string node id of one sensor variable."""
    return f"ns={namespace};s={site}.{asset}.{sensor}"


async def serve(config: OpcUaSimConfig, ready: asyncio.Event | None = None) -> None:
    """Run the server until cancelled."""
    secured = config.security == "basic256sha256"
    users = (
        _Users(config.username, config.password or "", require_certificate=secured)
        if config.username is not None
        else None
    )
    server = Server(user_manager=users)
    await server.init()
    server.set_endpoint(f"opc.tcp://127.0.0.1:{config.port}/equipmon/")
    server.set_server_name("equipmon simulated controller")
    if secured:
        cert_dir = config.cert_dir or Path(".")
        cert_dir.mkdir(parents=True, exist_ok=True)
        await _self_signed(cert_dir)
        await server.load_certificate(str(cert_dir / "server-cert.der"))
        await server.load_private_key(str(cert_dir / "server-key.pem"))
        server.set_security_policy(
            [
                ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt,
                ua.SecurityPolicyType.Basic256Sha256_Sign,
            ]
        )
    else:
        server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
    if users is not None:
        server.set_identity_tokens([ua.UserNameIdentityToken])
    namespace = await server.register_namespace(NAMESPACE_URI)
    variables = await _address_space(server, namespace, config)
    rng = random.Random(config.seed)
    async with server:
        if ready is not None:
            ready.set()
        log.info("OPC UA server on port %d: %d variables", config.port, len(variables))
        await _update_forever(variables, config, rng)


async def _address_space(
    server: Server, namespace: int, config: OpcUaSimConfig
) -> list[tuple[str, Any]]:
    site = await server.nodes.objects.add_folder(
        ua.NodeId(config.site, namespace), ua.QualifiedName(config.site, namespace)
    )
    variables = []
    for a in range(config.assets):
        asset = config.names[a] if a < len(config.names) else f"machine-{a + 1:02d}"
        folder = await site.add_object(
            ua.NodeId(f"{config.site}.{asset}", namespace), ua.QualifiedName(asset, namespace)
        )
        for s in range(config.sensors):
            sensor = SENSORS[s % len(SENSORS)] + (f"_{s // len(SENSORS)}" if s >= 8 else "")
            var = await folder.add_variable(
                ua.NodeId(f"{config.site}.{asset}.{sensor}", namespace),
                ua.QualifiedName(sensor, namespace),
                0.0,
                varianttype=ua.VariantType.Double,
            )
            variables.append((f"{asset}.{sensor}", var))
    return variables


async def _update_forever(
    variables: list[tuple[str, Any]], config: OpcUaSimConfig, rng: random.Random
) -> None:
    period = 1.0 / config.rate_hz
    loop = asyncio.get_running_loop()
    tick = 0
    while True:
        now = loop.time()
        # One scan of the controller: every value of this tick carries the same time.
        stamp = datetime.now(UTC)
        for i, (name, var) in enumerate(variables):
            value = 50.0 + 10.0 * math.sin(tick * period / 60.0 + i) + rng.gauss(0.0, 0.5)
            if name in config.bad:
                status = ua.StatusCode(StatusCodes.BadSensorFailure)
            elif name in config.uncertain:
                status = ua.StatusCode(StatusCodes.UncertainLastUsableValue)
            else:
                status = ua.StatusCode(StatusCodes.Good)
            await var.write_value(
                ua.DataValue(
                    ua.Variant(value, ua.VariantType.Double),
                    StatusCode=status,
                    SourceTimestamp=stamp,
                    ServerTimestamp=stamp,
                )
            )
        tick += 1
        await asyncio.sleep(max(0.0, period - (loop.time() - now)))


async def _self_signed(cert_dir: Path) -> None:
    from asyncua.crypto.cert_gen import setup_self_signed_certificate
    from cryptography.x509.oid import ExtendedKeyUsageOID

    key, cert = cert_dir / "server-key.pem", cert_dir / "server-cert.der"
    if key.exists() and cert.exists():
        return
    await setup_self_signed_certificate(
        key,
        cert,
        "urn:equipmon:device-sims:server",
        "127.0.0.1",
        [ExtendedKeyUsageOID.SERVER_AUTH],
        {"countryName": "VN", "organizationName": "equipmon", "commonName": "device-sims"},
    )


def run(config: OpcUaSimConfig) -> None:
    """Serve until interrupted (the CLI's ``opcua`` command)."""
    logging.getLogger("asyncua").setLevel(logging.WARNING)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(config))
