"""CURVE security: ZeroMQ's own encryption and authentication, off unless keys are given (docs/security.md).

Keys are the certificate files of ``zmq.auth.create_certificates`` (``scaler_keygen DIR NAME`` writes
``NAME.key``, the public key, and ``NAME.key_secret``, both keys). The scheduler is the CURVE server of its
ROUTER socket and of its monitor socket; clients, workers, ``scaler_top`` and the dashboard are CURVE clients
that know the scheduler's public key. The scheduler answers ZeroMQ's authentication requests (ZAP) itself:
only public keys in its allow-lists get in, and each accepted connection is labelled ``client`` or ``worker``
(ZAP's User-Id, which becomes the ``User-Id`` property of every message of that connection), so a client's
key cannot register as a worker. A worker's key may act as a client only for a task's nested client.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Mapping
from typing import Any

import zmq
import zmq.auth
import zmq.utils.z85

from scaler.utility.log_limit import OncePerKey

logger = logging.getLogger(__name__)

ZAP_ENDPOINT = "inproc://zeromq.zap.01"
ROUTER_DOMAIN = b"scaler"
MONITOR_DOMAIN = b"scaler-monitor"
CLIENT_ROLE = "client"
WORKER_ROLE = "worker"

# How many refused (address, key) pairs are remembered so that each is logged once.
_REFUSED_REMEMBERED = 10_000


@dataclasses.dataclass(frozen=True)
class Security:
    """Where one process finds its CURVE keys; every field is a path, None when not used.

    - ``secret_key_file``: this process's own certificate, ``NAME.key_secret`` (it holds both keys).
    - ``server_key_file``: the scheduler's public key, ``SCHEDULER.key`` (clients, workers, monitors; the
      scheduler's ``.key_secret`` works too).
    - ``allowed_clients`` / ``allowed_workers``: on the scheduler, a directory of public keys (every
      ``*.key`` in it) or one key file: who may connect as a client, who as a worker (a worker's key, or the
      scheduler's own, connects as a client only from inside a task a worker holds).
    """

    secret_key_file: str | None = None
    server_key_file: str | None = None
    allowed_clients: str | None = None
    allowed_workers: str | None = None

    @property
    def enabled(self) -> bool:
        """Whether any key is set (CURVE is on for this process's connections)."""
        return any(value is not None for value in dataclasses.astuple(self))

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any] | Any) -> Security | None:
        """The security of a config object or settings mapping (its ``curve_*`` values); None when all are unset."""

        def value(name: str) -> str | None:
            found = settings.get(name) if isinstance(settings, Mapping) else getattr(settings, name, None)
            return os.fspath(found) if found is not None else None

        security = cls(
            secret_key_file=value("curve_secret_key"),
            server_key_file=value("curve_server_key"),
            allowed_clients=value("curve_allowed_clients"),
            allowed_workers=value("curve_allowed_workers"),
        )
        return security if security.enabled else None

    # ------------------------------------------------------------------ checks and keys

    def check_server(self) -> None:
        """ValueError unless this is a complete scheduler-side security."""
        if self.secret_key_file is None:
            raise ValueError("CURVE security needs the scheduler's own key: curve_secret_key (NAME.key_secret)")
        if self.allowed_clients is None and self.allowed_workers is None:
            raise ValueError(
                "with curve_secret_key, the scheduler needs curve_allowed_clients and/or curve_allowed_workers "
                "(a directory or a file of public keys): otherwise no one could connect"
            )
        self.own_keys()
        load_allowed(self.allowed_clients, "curve_allowed_clients")
        load_allowed(self.allowed_workers, "curve_allowed_workers")

    def check_client(self) -> None:
        """ValueError unless this is a usable client-side security (the scheduler's public key is known)."""
        if self.server_key_file is None:
            raise ValueError("CURVE security needs the scheduler's public key: curve_server_key (SCHEDULER.key)")
        self.server_public_key()
        if self.secret_key_file is not None:
            self.own_keys()

    def own_keys(self) -> tuple[bytes, bytes]:
        """(public, secret) of this process; a fresh pair when no key file is set (refused by any scheduler)."""
        if self.secret_key_file is None:
            return zmq.curve_keypair()
        public, secret = _load(self.secret_key_file, "curve_secret_key")
        if secret is None:
            raise ValueError(
                f"curve_secret_key: {self.secret_key_file} holds no secret key (give NAME.key_secret, not NAME.key)"
            )
        return public, secret

    def server_public_key(self) -> bytes:
        """The scheduler's public key (Z85) read from ``server_key_file``; ValueError if it is not set or bad."""
        if self.server_key_file is None:
            raise ValueError("curve_server_key is not set")
        return _load(self.server_key_file, "curve_server_key")[0]


def _load(path: str, what: str) -> tuple[bytes, bytes | None]:
    try:
        return zmq.auth.load_certificate(path)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{what}: cannot read a CURVE key from {path}: {exc}") from None


def load_allowed(location: str | None, what: str) -> set[bytes]:
    """The public keys (Z85) of a directory (every ``*.key``, ``*.key_secret`` too) or of one key file."""
    if location is None:
        return set()
    if os.path.isdir(location):
        keys: set[bytes] = set()
        for name in sorted(os.listdir(location)):
            if name.endswith((".key", ".key_secret")):
                keys.add(_load(os.path.join(location, name), what)[0])
        return keys
    if not os.path.exists(location):
        raise ValueError(f"{what}: {location} does not exist")
    return {_load(location, what)[0]}


# ------------------------------------------------------------------ sockets


def apply_server(socket: zmq.Socket, security: Security, domain: bytes = ROUTER_DOMAIN) -> None:
    """Make ``socket`` (not yet bound) a CURVE server whose peers the scheduler's ZAP handler checks."""
    public, secret = security.own_keys()
    socket.setsockopt(zmq.CURVE_SERVER, 1)
    socket.setsockopt(zmq.CURVE_PUBLICKEY, public)
    socket.setsockopt(zmq.CURVE_SECRETKEY, secret)
    socket.setsockopt(zmq.ZAP_DOMAIN, domain)
    # Without an answering handler, refuse rather than let everyone in.
    socket.setsockopt(zmq.ZAP_ENFORCE_DOMAIN, 1)


def apply_client(socket: zmq.Socket, security: Security) -> None:
    """Make ``socket`` (not yet connected) a CURVE client of the scheduler whose public key ``security`` names."""
    public, secret = security.own_keys()
    socket.setsockopt(zmq.CURVE_SERVERKEY, security.server_public_key())
    socket.setsockopt(zmq.CURVE_PUBLICKEY, public)
    socket.setsockopt(zmq.CURVE_SECRETKEY, secret)


# The security a worker's processors inherit (they are forked from the agent): nested clients use it.
_process_default: Security | None = None


def set_process_default(security: Security | None) -> None:
    """The security a ``Client`` or ``StatusSubscriber`` of this process (and of its forks) uses when given none."""
    global _process_default
    _process_default = security


def process_default() -> Security | None:
    return _process_default


# ------------------------------------------------------------------ the scheduler's authenticator


class Authenticator:
    """Answers ZAP requests on ``inproc://zeromq.zap.01`` of the scheduler's context, in the scheduler's loop.

    ``bind()`` before the CURVE sockets are bound; hand ``on_request`` the frames of each request received on
    ``socket`` (a ROUTER) and send what it returns. ``reload()`` reads the allow-lists again.
    """

    def __init__(self, context: zmq.Context, security: Security) -> None:
        security.check_server()
        self.security = security
        self.socket = context.socket(zmq.ROUTER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self._roles: dict[bytes, str] = {}
        self._refused = OncePerKey(_REFUSED_REMEMBERED)
        self.refused_count = 0
        self.reload()

    def bind(self) -> None:
        self.socket.bind(ZAP_ENDPOINT)

    def reload(self) -> None:
        """Read the allow-lists again; on a mistake, keep the lists in force and log why."""
        try:
            clients = load_allowed(self.security.allowed_clients, "curve_allowed_clients")
            workers = load_allowed(self.security.allowed_workers, "curve_allowed_workers")
            own_public = self.security.own_keys()[0]
        except ValueError as exc:
            if not self._roles:
                raise
            logger.error("CURVE allow-lists not reloaded, the previous ones stay in force: %s", exc)
            return
        roles = dict.fromkeys(clients, CLIENT_ROLE)
        roles.update(dict.fromkeys(workers, WORKER_ROLE))
        roles[own_public] = WORKER_ROLE  # whoever holds the scheduler's secret key is trusted as a worker
        self._roles = roles
        self._refused.forget()
        logger.info("CURVE security on: %d client keys, %d worker keys allowed", len(clients), len(workers - clients))

    def role(self, public_key_z85: bytes) -> str | None:
        return self._roles.get(public_key_z85)

    def on_request(self, parts: list[Any]) -> list[bytes] | None:
        """The reply (routing envelope included) to one ZAP request received on the ROUTER."""
        frames = [bytes(part) for part in parts]
        try:
            delimiter = frames.index(b"")
        except ValueError:
            return None
        envelope, request = frames[: delimiter + 1], frames[delimiter + 1 :]
        if len(request) < 6:
            return None
        version, request_id, domain, address, _identity, mechanism = request[:6]
        credentials = request[6:]
        role: str | None = None
        key_text = b"-"
        if mechanism == b"CURVE" and credentials and len(credentials[0]) == 32:
            key_text = zmq.utils.z85.encode(credentials[0])
            role = self._roles.get(key_text)
        if role is not None:
            return [*envelope, version, request_id, b"200", b"OK", role.encode(), b""]
        self.refused_count += 1
        peer = (address, key_text)
        if self._refused.first(peer):
            what = "the monitor" if domain == MONITOR_DOMAIN else "the scheduler"
            logger.warning(
                "CURVE: refused a connection to %s from %s: public key %s is in no allow-list (%s)",
                what,
                peer_address_text(address),
                key_text.decode(errors="replace"),
                mechanism.decode(errors="replace"),
            )
        return [*envelope, version, request_id, b"400", b"key not allowed", b"", b""]

    def close(self) -> None:
        self.socket.close(linger=0)


def peer_address_text(address: bytes | str) -> str:
    """A peer's address as people write it: an IPv4 peer of a dual-stack socket without its ``::ffff:`` prefix."""
    text = (address.decode(errors="replace") if isinstance(address, bytes) else address) or "?"
    if text.startswith("::ffff:") and "." in text:
        return text[len("::ffff:") :]
    return text


def peer_role(frame: Any) -> str | None:
    """The role (``client`` or ``worker``) ZAP gave the connection a received frame came on, or None."""
    try:
        return frame.get("User-Id")
    except (zmq.ZMQError, AttributeError, KeyError):
        return None


def handshake_failure_text(events: Callable[[], list[dict[str, Any]]]) -> str | None:
    """A sentence about the first handshake failure among ``events`` (socket monitor events), or None."""
    for event in events():
        kind = event.get("event")
        if kind == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
            return "the scheduler refused this peer's CURVE key (not in its allow-list): check the keys"
        if kind == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL:
            return (
                "the security handshake failed: the scheduler and this peer disagree on CURVE security "
                "(one has keys, the other not, or the scheduler's public key is wrong)"
            )
        if kind == zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL:
            return "the security handshake with the scheduler failed: check the CURVE keys"
    return None
