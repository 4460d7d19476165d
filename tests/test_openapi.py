"""Schemathesis against /openapi.json: no 5xx, answers match the documented schemas.

The app is served on a real socket (``live_url``); schemathesis (synchronous,
``requests`` based) runs in a worker thread so the trio loop keeps serving.
Each operation gets a bounded number of generated cases, positive and negative,
once with random ids and once with the ids of real rows, so both the 404 paths
and the success paths are checked.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import attrs
import hypothesis
import pytest
import schemathesis
import trio
from hypothesis import HealthCheck, Phase
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from stinercut_svc.config import Settings
from stinercut_svc.context import StinercutApp
from stinercut_svc.models import Setting, SettingType
from tests.support.detector import StubDetector, stub_detector
from tests.support.media import make_clip
from tests.test_uploads import multipart

MAX_EXAMPLES = 15
#: Routes the document must describe (the fuzzing covers every operation it lists).
REQUIRED = {
    ("GET", "/"),
    ("GET", "/api/health"),
    ("GET", "/api/projects"),
    ("POST", "/api/projects"),
    ("GET", "/api/projects/{uuid}"),
    ("PATCH", "/api/projects/{uuid}"),
    ("DELETE", "/api/projects/{uuid}"),
    ("POST", "/api/projects/{uuid}/videos"),
    ("PUT", "/api/projects/{uuid}/videos/order"),
    ("POST", "/api/projects/{uuid}/render"),
    ("GET", "/api/videos/{uuid}"),
    ("PATCH", "/api/videos/{uuid}"),
    ("DELETE", "/api/videos/{uuid}"),
    ("GET", "/api/videos/{uuid}/thumbnail"),
    ("GET", "/api/assets"),
    ("POST", "/api/assets"),
    ("GET", "/api/assets/{uuid}"),
    ("PATCH", "/api/assets/{uuid}"),
    ("DELETE", "/api/assets/{uuid}"),
    ("GET", "/api/assets/{uuid}/file"),
    ("GET", "/api/settings"),
    ("GET", "/api/settings/{key}"),
    ("PUT", "/api/settings/{key}"),
    ("GET", "/api/jobs"),
    ("GET", "/api/jobs/{uuid}"),
    ("POST", "/api/jobs/{uuid}/cancel"),
    ("DELETE", "/api/jobs/{uuid}"),
    ("GET", "/api/jobs/{uuid}/output"),
    ("POST", "/api/fonts/convert"),
    ("GET", "/api/services/detector/status"),
    ("POST", "/api/services/detector/restart"),
    ("POST", "/api/services/detector/enable"),
    ("POST", "/api/services/detector/disable"),
    ("GET", "/api/ws/clients"),
}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture
async def detector_url() -> AsyncIterator[str]:
    """A detector that answers: its routes must show their 200s, not a 503."""
    async with stub_detector(StubDetector(body=b'{"message": "ok", "enabled": true}')) as url:
        yield url


@pytest.fixture
def settings(settings: Settings, detector_url: str) -> Settings:
    return attrs.evolve(settings, detector_url=detector_url)


def run_schemathesis(base_url: str, ids: dict[str, str]) -> list[str]:
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    documented = {(op.method.upper(), op.path) for op in operations}
    assert REQUIRED <= documented, sorted(REQUIRED - documented)
    for operation in operations:
        variants: list[tuple[GenerationMode, dict[str, Any] | None]] = [
            (GenerationMode.POSITIVE, None),
            (GenerationMode.NEGATIVE, None),
        ]
        if "{uuid}" in operation.path or "{key}" in operation.path:
            resource = operation.path.split("/")[2]
            name = "key" if "{key}" in operation.path else "uuid"
            variants.append((GenerationMode.POSITIVE, {name: ids[resource]}))
        for mode, path_parameters in variants:
            strategy = operation.as_strategy(generation_mode=mode, path_parameters=path_parameters)

            @hypothesis.given(case=strategy)
            @hypothesis.settings(
                max_examples=MAX_EXAMPLES,
                deadline=None,
                database=None,
                derandomize=True,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            def check(case: schemathesis.Case) -> None:
                case.call_and_validate(base_url=base_url, checks=CHECKS, timeout=30)

            try:
                check()
            except hypothesis.errors.Unsatisfiable:
                # Negative mode has nothing to break when the only input is a
                # free-form path segment (any string is valid for the schema).
                assert mode is GenerationMode.NEGATIVE, operation.label
            except (Exception, BaseExceptionGroup) as exc:  # collect every failure, then report
                failures.append(f"{operation.label} [{mode.value}, {path_parameters}]: {exc}")
    return failures


async def test_schemathesis_finds_no_errors(
    client, app: StinercutApp, live_url: str, media_dir: Path
) -> None:  # type: ignore[no-untyped-def]
    clip = media_dir / "openapi.mp4"
    if not clip.exists():
        make_clip(clip, seconds=0.5)
    project = await (await client.post("/api/projects", json={"name": "fuzz"})).get_json()
    body, ctype = multipart(file=("clip.mp4", clip.read_bytes()))
    video = await (
        await client.post(
            f"/api/projects/{project['uuid']}/videos", data=body, headers={"Content-Type": ctype}
        )
    ).get_json()
    body, ctype = multipart(file=("intro.mp4", clip.read_bytes()), type="intro")
    asset = await (
        await client.post("/api/assets", data=body, headers={"Content-Type": ctype})
    ).get_json()

    def add_setting(session) -> None:  # type: ignore[no-untyped-def]
        session.add(Setting(key="fuzz.level", value="1", type=SettingType.INTEGER, category="t"))

    await app.db.run(add_setting)
    job = await (await client.post(f"/api/projects/{project['uuid']}/render", json={})).get_json()
    assert "uuid" in job, job
    ids = {
        "jobs": job["uuid"],
        "projects": project["uuid"],
        "videos": video["uuid"],
        "assets": asset["uuid"],
        "settings": "fuzz.level",
    }
    with trio.fail_after(600):
        failures = await trio.to_thread.run_sync(run_schemathesis, live_url, ids)
    assert not failures, "\n\n".join(failures)
