"""Settings, read once from the environment into a frozen value.

Every knob the service has is an environment variable listed here (and in the
README's configuration table). Parsing happens once, at start-up, so a typo in a
deployment stops the process with one clear line instead of failing later inside a
request.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import attrs

#: What one process does (``ROLE``): ``api`` serves HTTP/WS and queues jobs without
#: claiming them, ``worker`` claims and renders jobs and serves only health and
#: metrics, ``all`` does both (the single-process default).
Role = Literal["all", "api", "worker"]
ROLES: tuple[Role, ...] = ("all", "api", "worker")

DEFAULT_DATA_DIR = "./var"
DEFAULT_SHARED_PATH = "./var/shared-videos"
#: Where the detector listens when both run natively on one machine; compose.yml
#: overrides it with http://host.docker.internal:8001 (the host seen from a container).
DEFAULT_DETECTOR_URL = "http://127.0.0.1:8001"
DEFAULT_CORS_ORIGINS = "http://localhost:8080,https://stinercut.local"
LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")
_GIB = 1024**3
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
_MIB = 1024**2


class ConfigError(ValueError):
    """A configuration value is unusable; the message names the variable."""


@attrs.frozen
class Settings:
    """The service configuration. Build it with :meth:`from_env` or directly in tests."""

    database_url: str
    shared_video_path: Path
    detector_url: str = DEFAULT_DETECTOR_URL
    detector_api_key: str | None = None
    detector_ws_token: str | None = None
    cors_origins: tuple[str, ...] = tuple(DEFAULT_CORS_ORIGINS.split(","))
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "INFO"
    redis_url: str | None = None
    ffmpeg: str = "ffmpeg"
    ffprobe: str = "ffprobe"
    ws_max_message_bytes: int = _MIB
    max_upload_bytes: int = 8 * _GIB
    #: Font conversion: time budget per conversion (the worker is killed past it)
    font_timeout_seconds: float = 10.0
    #: Font conversion: output budget per conversion, bytes of SVG path data
    font_max_output_bytes: int = 5 * _MIB
    #: Font conversion: worker processes (0 = one per CPU, at most 4)
    font_workers: int = 0
    #: WebSocket hub: seconds of silence before a client gets ``hub:ping`` (0 = no keepalive)
    ws_ping_interval: float = 30.0
    #: WebSocket hub: seconds a client may stay unresponsive (no answer to hub:ping,
    #: or one message stuck on its socket) before it is dropped
    ws_ping_timeout: float = 20.0
    #: WebSocket hub: messages queued per client before it is disconnected
    ws_outbox_messages: int = 4096
    #: Redis pub/sub channel (and key prefix) the hub instances share
    redis_hub_channel: str = "stinercut:hub"
    #: WebSocket hub: clients per instance (0 = only the file-descriptor ceiling)
    ws_max_clients: int = 4096
    #: WebSocket hub: clients per remote IP address (0 = no cap)
    ws_max_clients_per_address: int = 0
    #: file descriptors kept for HTTP and the service itself (the WebSocket cap
    #: never eats into them, so health and the API stay reachable)
    ws_fd_reserve: int = 128
    #: Ingest: seconds of ground kept after the landing in a jump's edit
    ingest_ground_after_landing_s: float = 20.0
    #: Ingest: queue a render when a jump resolves (automatically or by staff)
    ingest_auto_render: bool = False
    #: ``ROLE``: see :data:`Role`
    role: Role = "all"
    #: Webhooks: HMAC-SHA256 key of X-Stinercut-Signature (unset: callback URLs refused)
    webhook_secret: str | None = None
    #: Webhooks: allow callback URLs resolving to loopback/link-local/private addresses
    webhook_allow_private: bool = False
    #: Webhooks: first retry delay; doubles per attempt (capped at 10 min)
    webhook_retry_base_s: float = 10.0
    #: Webhooks: how long a failing delivery keeps being retried
    webhook_retry_window_s: float = 86400.0
    #: Webhooks: deadline of one delivery attempt
    webhook_timeout_s: float = 10.0
    #: Share links: the base URL customers reach the service at (unset: the request's)
    public_base_url: str | None = None
    #: Access control: API tokens required (outside TRUSTED_NETWORKS); off by default
    auth_required: bool = False
    #: Access control: client networks that need no token (the centre's LAN)
    trusted_networks: tuple[IPNetwork, ...] = ()
    #: ``LOG_FORMAT``: ``text`` (classic lines) or ``json`` (one object per line)
    log_format: Literal["text", "json"] = "text"
    #: ``METRICS_ENABLED``: ``GET /metrics`` and the per-request HTTP counters
    metrics_enabled: bool = True
    #: ``INGEST_AUTO``: a detector's ``device.mounted`` under IMPORT_ROOTS starts an import
    ingest_auto: bool = False
    #: ``IMPORT_ROOTS``: folders imports may read from (os.pathsep- or comma-separated;
    #: empty = imports from folders are refused)
    import_roots: tuple[Path, ...] = ()

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Parse the environment; raise :class:`ConfigError` naming the bad variable."""
        env = os.environ if environ is None else environ
        shared = Path(_get(env, "SHARED_VIDEO_PATH") or DEFAULT_SHARED_PATH).expanduser().resolve()
        data_dir = Path(_get(env, "DATA_DIR") or DEFAULT_DATA_DIR).expanduser().resolve()
        return cls(
            database_url=normalise_database_url(
                _get(env, "DATABASE_URL") or default_sqlite_url(data_dir)
            ),
            shared_video_path=shared,
            detector_url=_http_url(env, "DETECTOR_URL", DEFAULT_DETECTOR_URL),
            detector_api_key=_get(env, "DETECTOR_API_KEY"),
            detector_ws_token=_get(env, "DETECTOR_WS_TOKEN"),
            cors_origins=_origins(env),
            host=_get(env, "HOST") or "127.0.0.1",
            port=_int(env, "PORT", 8000, low=1, high=65535),
            log_level=_log_level(env),
            redis_url=_redis_url(env),
            ffmpeg=_get(env, "FFMPEG_BINARY") or "ffmpeg",
            ffprobe=_get(env, "FFPROBE_BINARY") or "ffprobe",
            ws_max_message_bytes=_int(env, "WS_MAX_MESSAGE_BYTES", _MIB, low=1024, high=64 * _MIB),
            max_upload_bytes=_int(env, "MAX_UPLOAD_BYTES", 8 * _GIB, low=1, high=1024 * _GIB),
            font_timeout_seconds=_float(env, "FONT_TIMEOUT_SECONDS", 10.0, low=0.1, high=3600.0),
            font_max_output_bytes=_int(
                env, "FONT_MAX_OUTPUT_BYTES", 5 * _MIB, low=1024, high=1024 * _MIB
            ),
            font_workers=_int(env, "FONT_WORKERS", 0, low=0, high=64),
            ws_ping_interval=_float(env, "WS_PING_INTERVAL", 30.0, low=0.0, high=3600.0),
            ws_ping_timeout=_float(env, "WS_PING_TIMEOUT", 20.0, low=0.1, high=3600.0),
            ws_outbox_messages=_int(env, "WS_OUTBOX_MESSAGES", 4096, low=1, high=1_000_000),
            redis_hub_channel=_channel(env, "REDIS_HUB_CHANNEL", "stinercut:hub"),
            ws_max_clients=_int(env, "WS_MAX_CLIENTS", 4096, low=0, high=1_000_000),
            ws_max_clients_per_address=_int(
                env, "WS_MAX_CLIENTS_PER_ADDRESS", 0, low=0, high=1_000_000
            ),
            ws_fd_reserve=_int(env, "WS_FD_RESERVE", 128, low=16, high=1_000_000),
            ingest_ground_after_landing_s=_float(
                env, "INGEST_GROUND_AFTER_LANDING_S", 20.0, low=0.0, high=3600.0
            ),
            ingest_auto_render=_flag(env, "INGEST_AUTO_RENDER", False),
            role=_role(env),
            webhook_secret=_get(env, "WEBHOOK_SECRET"),
            webhook_allow_private=_flag(env, "WEBHOOK_ALLOW_PRIVATE", False),
            webhook_retry_base_s=_float(env, "WEBHOOK_RETRY_BASE_S", 10.0, low=0.01, high=3600.0),
            webhook_retry_window_s=_float(
                env, "WEBHOOK_RETRY_WINDOW_S", 86400.0, low=1.0, high=30 * 86400.0
            ),
            webhook_timeout_s=_float(env, "WEBHOOK_TIMEOUT_S", 10.0, low=0.1, high=300.0),
            public_base_url=_optional_http_url(env, "PUBLIC_BASE_URL"),
            auth_required=_flag(env, "AUTH_REQUIRED", False),
            trusted_networks=_networks(env, "TRUSTED_NETWORKS"),
            log_format=_log_format(env),
            metrics_enabled=_flag(env, "METRICS_ENABLED", True),
            ingest_auto=_flag(env, "INGEST_AUTO", False),
            import_roots=_paths(env, "IMPORT_ROOTS"),
        )


def default_sqlite_url(data_dir: Path) -> str:
    """The embedded default: ``stinercut.sqlite3`` in the data folder.

    The data folder is separate from the shared storage root so that nothing a
    client can address by a storage path is the database file itself.
    """
    return f"sqlite:///{data_dir / 'stinercut.sqlite3'}"


def normalise_database_url(url: str) -> str:
    """Accept the URL forms deployments use and pick the driver this service ships.

    ``mysql://`` (what the frontend's compose file uses) becomes ``mysql+pymysql://``;
    anything that is neither MySQL nor SQLite is refused at start-up.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ConfigError(f"DATABASE_URL: {url!r} is not a URL (expected mysql://… or sqlite:///…)")
    scheme = scheme.lower()
    if scheme in ("mysql", "mysql+pymysql", "mariadb", "mariadb+pymysql"):
        if not rest or rest.startswith("/"):
            raise ConfigError("DATABASE_URL: a MySQL URL needs a host, e.g. mysql://user:pw@host/db")
        return f"mysql+pymysql://{rest}"
    if scheme in ("sqlite", "sqlite+pysqlite"):
        return f"sqlite://{rest}"
    raise ConfigError(f"DATABASE_URL: unsupported scheme {scheme!r} (use mysql:// or sqlite:///)")


def _get(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    if value is None:
        return None
    value = value.strip()
    return value or None


def _int(env: Mapping[str, str], name: str, default: int, *, low: int, high: int) -> int:
    raw = _get(env, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}: {raw!r} is not a whole number") from None
    if not low <= value <= high:
        raise ConfigError(f"{name}: {value} is outside {low}..{high}")
    return value


def _float(env: Mapping[str, str], name: str, default: float, *, low: float, high: float) -> float:
    raw = _get(env, name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}: {raw!r} is not a number") from None
    if not low <= value <= high:  # also refuses nan
        raise ConfigError(f"{name}: {value:g} is outside {low:g}..{high:g}")
    return value


def _channel(env: Mapping[str, str], name: str, default: str) -> str:
    raw = _get(env, name) or default
    if any(ch.isspace() for ch in raw) or len(raw) > 200:
        raise ConfigError(f"{name}: {raw!r} is not a channel name (no spaces, at most 200 characters)")
    return raw


def _http_url(env: Mapping[str, str], name: str, default: str) -> str:
    raw = _get(env, name) or default
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{name}: {raw!r} is not an http(s) URL")
    return raw.rstrip("/")


def _redis_url(env: Mapping[str, str]) -> str | None:
    raw = _get(env, "REDIS_URL")
    if raw is None:
        return None
    parts = urlsplit(raw)
    if parts.scheme not in ("redis", "rediss") or not parts.hostname:
        raise ConfigError(f"REDIS_URL: {raw!r} is not a redis:// URL")
    from .resp import RedisAddress  # the bridge's own parser: what it accepts, nothing else

    try:
        RedisAddress.from_url(raw)
    except ValueError as exc:
        raise ConfigError(f"REDIS_URL: {exc}") from None
    return raw


def _origins(env: Mapping[str, str]) -> tuple[str, ...]:
    raw = _get(env, "CORS_ORIGINS")
    if raw is None:
        raw = DEFAULT_CORS_ORIGINS
    origins = tuple(o.strip().rstrip("/") for o in raw.split(",") if o.strip())
    for origin in origins:
        if origin == "*":
            continue
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.path:
            raise ConfigError(f"CORS_ORIGINS: {origin!r} is not an origin like https://host[:port]")
    return origins


def _log_level(env: Mapping[str, str]) -> str:
    raw = (_get(env, "LOG_LEVEL") or "INFO").upper()
    if raw not in LOG_LEVELS:
        raise ConfigError(f"LOG_LEVEL: {raw!r} is not one of {', '.join(LOG_LEVELS)}")
    return raw


def _log_format(env: Mapping[str, str]) -> Literal["text", "json"]:
    raw = (_get(env, "LOG_FORMAT") or "text").lower()
    if raw == "json":
        return "json"
    if raw == "text":
        return "text"
    raise ConfigError(f"LOG_FORMAT: {raw!r} is not one of text, json")


def _role(env: Mapping[str, str]) -> Role:
    raw = (_get(env, "ROLE") or "all").lower()
    for role in ROLES:
        if raw == role:
            return role
    raise ConfigError(f"ROLE: {raw!r} is not one of {', '.join(ROLES)}")


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    """A boolean variable: true/false, yes/no, on/off or 1/0 (any case); unset = default."""
    raw = _get(env, name)
    if raw is None:
        return default
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise ConfigError(f"{name}: {raw!r} is not a boolean (true/false, yes/no, on/off, 1/0)")


def _paths(env: Mapping[str, str], name: str) -> tuple[Path, ...]:
    """Absolute folders separated by ``os.pathsep`` or commas; relative ones are refused
    (they would depend on the working directory the service happens to start in)."""
    raw = (_get(env, name) or "").replace(os.pathsep, ",")
    paths: list[Path] = []
    for item in raw.split(","):
        item = item.strip()
        if not item:
            continue
        path = Path(item).expanduser()
        if not path.is_absolute():
            raise ConfigError(f"{name}: {item!r} is not an absolute path")
        paths.append(path)
    return tuple(paths)


def _networks(env: Mapping[str, str], name: str) -> tuple[IPNetwork, ...]:
    """A comma-separated CIDR list (``10.0.0.0/8, 192.168.1.0/24, ::1/128``); a bare
    address means that one host. Host bits set (``10.0.0.1/8``) are refused: that
    is usually a typo for a different network."""
    networks: list[IPNetwork] = []
    for item in (_get(env, name) or "").split(","):
        item = item.strip()
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item))
        except ValueError as exc:
            raise ConfigError(f"{name}: {item!r} is not a network in CIDR form ({exc})") from None
    return tuple(networks)


def _optional_http_url(env: Mapping[str, str], name: str) -> str | None:
    raw = _get(env, name)
    return None if raw is None else _http_url(env, name, raw).rstrip("/")
