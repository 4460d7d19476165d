"""Settings parsing: defaults, normalisation, and one clear line for bad values."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from stinercut_svc.config import ConfigError, Settings, normalise_database_url


def test_defaults_use_sqlite_under_the_data_folder(tmp_path: Path) -> None:
    s = Settings.from_env({"DATA_DIR": str(tmp_path / "data")})
    assert s.database_url == f"sqlite:///{tmp_path / 'data' / 'stinercut.sqlite3'}"
    assert s.shared_video_path == Path("./var/shared-videos").resolve()
    assert s.detector_url == "http://127.0.0.1:8001"
    assert s.detector_api_key is None
    assert s.cors_origins == ("http://localhost:8080", "https://stinercut.local")
    assert (s.host, s.port, s.log_level) == ("127.0.0.1", 8000, "INFO")
    assert s.redis_url is None


def test_every_variable_is_read(tmp_path: Path) -> None:
    s = Settings.from_env(
        {
            "DATABASE_URL": "mysql://u:p@db:3306/stinercut",
            "SHARED_VIDEO_PATH": str(tmp_path),
            "DETECTOR_URL": "http://detector:8001/",
            "DETECTOR_API_KEY": "k",
            "DETECTOR_WS_TOKEN": "t",
            "CORS_ORIGINS": "https://a.example, http://b.example:8080",
            "HOST": "0.0.0.0",
            "PORT": "9000",
            "LOG_LEVEL": "debug",
            "REDIS_URL": "redis://redis:6379/0",
            "WS_MAX_MESSAGE_BYTES": "2048",
            "MAX_UPLOAD_BYTES": "1000",
            "FFMPEG_BINARY": "/opt/ff/ffmpeg",
            "FFPROBE_BINARY": "/opt/ff/ffprobe",
            "WS_PING_INTERVAL": "15",
            "WS_PING_TIMEOUT": "2.5",
            "WS_OUTBOX_MESSAGES": "64",
            "REDIS_HUB_CHANNEL": "site-a:hub",
        }
    )
    assert s.database_url == "mysql+pymysql://u:p@db:3306/stinercut"
    assert s.shared_video_path == tmp_path
    assert s.detector_url == "http://detector:8001"
    assert (s.detector_api_key, s.detector_ws_token) == ("k", "t")
    assert s.cors_origins == ("https://a.example", "http://b.example:8080")
    assert (s.host, s.port, s.log_level) == ("0.0.0.0", 9000, "DEBUG")
    assert s.redis_url == "redis://redis:6379/0"
    assert (s.ws_ping_interval, s.ws_ping_timeout, s.ws_outbox_messages) == (15.0, 2.5, 64)
    assert s.redis_hub_channel == "site-a:hub"
    assert (s.ws_max_message_bytes, s.max_upload_bytes) == (2048, 1000)
    assert (s.ffmpeg, s.ffprobe) == ("/opt/ff/ffmpeg", "/opt/ff/ffprobe")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mysql://u:p@h/db", "mysql+pymysql://u:p@h/db"),
        ("mysql+pymysql://u:p@h/db", "mysql+pymysql://u:p@h/db"),
        ("MySQL://u@h:3307/db?charset=utf8mb4", "mysql+pymysql://u@h:3307/db?charset=utf8mb4"),
        ("sqlite:////abs/file.db", "sqlite:////abs/file.db"),
    ],
)
def test_database_url_normalised(url: str, expected: str) -> None:
    assert normalise_database_url(url) == expected


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"PORT": "abc"}, "PORT: 'abc' is not a whole number"),
        ({"PORT": "70000"}, "PORT: 70000 is outside 1..65535"),
        ({"DATABASE_URL": "postgres://u@h/db"}, "DATABASE_URL: unsupported scheme 'postgres'"),
        ({"DATABASE_URL": "not a url"}, "DATABASE_URL: 'not a url' is not a URL"),
        ({"DATABASE_URL": "mysql:///db"}, "DATABASE_URL: a MySQL URL needs a host"),
        ({"DETECTOR_URL": "ftp://x"}, "DETECTOR_URL"),
        ({"CORS_ORIGINS": "localhost:8080"}, "CORS_ORIGINS"),
        ({"LOG_LEVEL": "chatty"}, "LOG_LEVEL"),
        ({"REDIS_URL": "http://redis"}, "REDIS_URL"),
        ({"WS_MAX_MESSAGE_BYTES": "10"}, "WS_MAX_MESSAGE_BYTES"),
        ({"WS_PING_INTERVAL": "soon"}, "WS_PING_INTERVAL: 'soon' is not a number"),
        ({"WS_PING_INTERVAL": "-1"}, "WS_PING_INTERVAL: -1 is outside 0..3600"),
        ({"WS_PING_TIMEOUT": "nan"}, "WS_PING_TIMEOUT"),
        ({"WS_PING_TIMEOUT": "0"}, "WS_PING_TIMEOUT"),
        ({"WS_OUTBOX_MESSAGES": "0"}, "WS_OUTBOX_MESSAGES"),
        ({"REDIS_HUB_CHANNEL": "two words"}, "REDIS_HUB_CHANNEL"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle.replace("(", r"\(").replace(".", r"\.")):
        Settings.from_env(env)


@pytest.mark.parametrize("env", [{"PORT": "abc"}, {"DATABASE_URL": "oracle://x/y"}])
def test_cli_stops_with_one_line_and_exit_code_2(env: dict[str, str], tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "stinercut_svc", "serve"],
        env={"PATH": "/usr/bin:/bin", "DATA_DIR": str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("stinercut: configuration error: ")
    assert done.stdout == ""
