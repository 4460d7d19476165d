"""compose.yml, .env.example and the Dockerfile, checked without Docker.

compose.yml is parsed (PyYAML, anchors and merge keys resolved as Compose does)
and its ``${VAR...}`` references interpolated from .env.example with Compose's
rules; the resulting environment of ``backend`` and ``worker`` is then read by
the service's own configuration parser, so a typo in a value fails here rather
than at a centre's first start.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from stinercut_svc.config import Settings
from stinercut_svc.process_role import WORKER_PATHS

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")
SECRET_WORDS = ("PASSWORD", "SECRET", "TOKEN", "API_KEY")


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines (comments and blank lines allowed), as Compose reads .env."""
    values: dict[str, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep and re.fullmatch(r"[A-Z_][A-Z0-9_]*", key), f"{path.name}:{number}: {line!r}"
        assert key not in values, f"{path.name}:{number}: {key} twice"
        assert value == value.strip(), f"{path.name}:{number}: spaces around the value"
        values[key] = value
    return values


def interpolate(node: Any, env: dict[str, str], errors: list[str]) -> Any:
    """Compose's ``${VAR}``, ``${VAR:-default}``, ``${VAR:?error}`` and ``$$`` in every
    string of the parsed file (comments are not interpolated, as in Compose)."""
    if isinstance(node, dict):
        return {key: interpolate(value, env, errors) for key, value in node.items()}
    if isinstance(node, list):
        return [interpolate(item, env, errors) for item in node]
    if not isinstance(node, str):
        return node

    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match.group(1), match.group(2), match.group(3)
        value = env.get(name)
        if op in (":-", "-"):
            return value if value or (op == "-" and value is not None) else arg
        if op in (":?", "?"):
            if not value:
                errors.append(f"{name}: {arg}")
            return value or ""
        return value or ""

    return REFERENCE.sub(one, node)


@pytest.fixture(scope="module")
def example_env() -> dict[str, str]:
    return read_env_file(ROOT / ".env.example")


@pytest.fixture(scope="module")
def raw_compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "compose.yml").read_text())  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def compose(example_env: dict[str, str]) -> dict[str, Any]:
    errors: list[str] = []
    parsed = interpolate(yaml.safe_load((ROOT / "compose.yml").read_text()), example_env, errors)
    assert errors == [], "required variables missing from .env.example"
    return parsed  # type: ignore[no-any-return]


def test_without_env_file_compose_names_what_is_missing(raw_compose: dict[str, Any]) -> None:
    errors: list[str] = []
    interpolate(raw_compose, {}, errors)
    missing = {error.split(":")[0] for error in errors}
    assert missing == {"MYSQL_PASSWORD", "MYSQL_ROOT_PASSWORD", "TRUSTED_NETWORKS"}


def test_no_secret_is_written_in_compose(raw_compose: dict[str, Any]) -> None:
    for name, service in raw_compose["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if any(word in key for word in SECRET_WORDS):
                assert isinstance(value, str) and value.startswith("${"), (name, key, value)
        url = (service.get("environment") or {}).get("DATABASE_URL")
        if url is not None:
            # user:password@ where the password is only a reference to .env
            password = re.match(r"mysql://(?:\$\{[^}]*\}|[^:/]+):(\$\{[^}]*\})@", url)
            assert password and password.group(1).startswith("${MYSQL_PASSWORD"), url


def test_services_roles_health_and_order(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) >= {"backend", "worker", "mysql", "redis"}
    backend, worker = services["backend"], services["worker"]
    assert backend["environment"]["ROLE"] == "api"
    assert worker["environment"]["ROLE"] == "worker"
    assert "ports" not in worker and "container_name" not in worker  # --scale worker=N
    assert backend["image"] == worker["image"] and backend["build"] == worker["build"]
    # Both see the same storage and database.
    assert backend["volumes"] == worker["volumes"]
    assert backend["environment"]["DATABASE_URL"] == worker["environment"]["DATABASE_URL"]
    assert backend["environment"]["AUTH_REQUIRED"] == "true"
    for name, service in services.items():
        check = service.get("healthcheck")
        assert check and check["test"], f"{name} has no health check"
        for dependency, condition in (service.get("depends_on") or {}).items():
            assert condition == {"condition": "service_healthy"}, (name, dependency)
    assert set(worker["depends_on"]) == {"mysql", "redis", "backend"}
    # The stinercut health check asks a path a worker serves.
    probe = " ".join(backend["healthcheck"]["test"])
    path = re.search(r"http://127\.0\.0\.1:8000(/[\w/]+)", probe)
    assert path and path.group(1) in WORKER_PATHS


@pytest.mark.parametrize(("service", "role"), [("backend", "api"), ("worker", "worker")])
def test_service_environment_is_a_valid_configuration(
    compose: dict[str, Any], service: str, role: str
) -> None:
    environment = {key: str(value) for key, value in compose["services"][service]["environment"].items()}
    settings = Settings.from_env(environment)
    assert settings.role == role
    assert settings.database_url.startswith("mysql+pymysql://stinercut:")
    assert settings.redis_url == "redis://redis:6379/0"
    assert settings.auth_required is True
    assert [str(n) for n in settings.trusted_networks] == ["192.168.10.0/24"]
    assert settings.detector_url == "http://host.docker.internal:8001"


def test_env_file_stays_out_of_git_and_images() -> None:
    assert ".env" in (ROOT / ".gitignore").read_text().split()
    dockerignore = (ROOT / ".dockerignore").read_text().split()
    assert ".env" in dockerignore and "!.env.example" in dockerignore


def test_dockerfile_pinned_non_root_with_health_check() -> None:
    lines = [
        line.strip()
        for line in (ROOT / "Dockerfile").read_text().replace("\\\n", " ").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    instructions = [line.split()[0].upper() for line in lines]
    installs = [line for line in lines if "pip install" in line]
    assert installs, "the image installs its packages with pip"
    for line in installs:  # nothing outside the hash-pinned lock (no build backend either)
        assert "--require-hashes" in line and "requirements/runtime.lock" in line, line
    user = [line for line in lines if line.upper().startswith("USER ")]
    assert user and user[-1].split()[1] not in ("root", "0")
    last_user = max(i for i, kind in enumerate(instructions) if kind == "USER")
    assert all(
        kind != "RUN" or "pip install" not in lines[i] or i < last_user
        for i, kind in enumerate(instructions)
    ), "packages are installed before switching to the unprivileged user"
    assert "HEALTHCHECK" in instructions and "/api/health" in lines[instructions.index("HEALTHCHECK")]
