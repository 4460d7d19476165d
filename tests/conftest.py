"""Fixtures shared by the whole suite: settings, a running app, clients, media.

The database backend is chosen by the environment (see ``tests/support/backends.py``);
every test that touches the database therefore runs on SQLite *and* MariaDB when
``scripts/test`` runs both passes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import trio

from stinercut_svc.app import create_app
from stinercut_svc.config import Settings
from stinercut_svc.context import StinercutApp
from tests.support import backends
from tests.support.render_defaults import clear_frontend_render_defaults
from tests.support.server import running_server

TEST_ORIGIN = "http://localhost:8080"


def pytest_report_header(config: pytest.Config) -> str:
    redis = backends.REDIS_URL or "not configured"
    return f"stinercut database backend: {backends.backend_name()}; redis: {redis}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Not a hidden failure: scripts/test runs the suite a second time on MariaDB,
    # and that pass runs these tests.
    if backends.MYSQL_URL:
        return
    skip = pytest.mark.skip(reason="MySQL/MariaDB only: the MySQL pass of scripts/test runs it")
    for item in items:
        if "mysql_only" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def _mysql_engine() -> Iterator[object]:
    if not backends.MYSQL_URL:
        yield None
        return
    engine = backends.admin_engine(backends.mysql_url())
    backends.drop_everything(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def database_url(tmp_path: Path, _mysql_engine: object) -> str:
    """A clean database at the head revision (MySQL), or a fresh SQLite file path."""
    if _mysql_engine is None:
        return backends.sqlite_url(tmp_path)
    backends.reset_mysql(_mysql_engine)  # type: ignore[arg-type]
    return backends.mysql_url()


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        shared_video_path=tmp_path / "shared",
        cors_origins=(TEST_ORIGIN,),
        detector_url="http://127.0.0.1:9",
    )


@pytest.fixture
async def served(settings: Settings) -> AsyncIterator[tuple[StinercutApp, str]]:
    """The app served by Hypercorn on a real 127.0.0.1 socket, with its one lifespan.

    ``app``, ``client`` and ``live_url`` all share this single server: running a
    second lifespan (``test_app()``) beside Hypercorn's would start every
    background task twice.
    """
    application = create_app(settings)
    async with running_server(application) as url:
        yield application, url


@pytest.fixture
def app(served: tuple[StinercutApp, str]) -> StinercutApp:
    """The app with its lifespan running (start-up done, nursery open)."""
    return served[0]


@pytest.fixture
def client(app: StinercutApp):  # type: ignore[no-untyped-def]
    """Quart's in-process test client for ``app`` (no socket involved)."""
    return app.test_client()


@pytest.fixture
def live_url(served: tuple[StinercutApp, str]) -> str:
    """Base URL (``http://127.0.0.1:PORT``) of the served app."""
    return served[1]


@pytest.fixture
async def built_in_defaults(app: StinercutApp) -> None:
    """Render with the built-in defaults (first clip's size and rate), not the frontend's
    ``video.*`` rows; those are covered in test_render_defaults.py."""
    await clear_frontend_render_defaults(app)


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A session-wide folder for generated clips (they are costly to make twice)."""
    return tmp_path_factory.mktemp("media")


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)
