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
        resource = operation.path.split("/")[2] if operation.path.count("/") >= 2 else ""
        if ("{uuid}" in operation.path or "{key}" in operation.path) and resource in ids:
            # Routes of resources this test creates rows for also run with real ids
            # (others, added later, get the generated ids only).
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


# --- the document itself: complete for every operation, by rule ----------------------

HTTP_METHODS = ("get", "put", "post", "patch", "delete")


def operations_of(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    ]


def error_schema_ok(document: dict[str, Any], response: dict[str, Any]) -> bool:
    """The response is JSON of the one error shape (``error`` object + ``detail``)."""
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    if "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return {"error", "detail"} <= set(schema.get("required", ())) and "error" in schema.get(
        "properties", {}
    )


def iter_nodes(node: Any) -> Any:
    yield node
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
    for child in children:
        yield from iter_nodes(child)


async def test_every_operation_is_tagged_summarised_and_has_error_schemas(
    client,  # type: ignore[no-untyped-def]
) -> None:
    document = await (await client.get("/openapi.json")).get_json()
    operations = operations_of(document)
    assert {(m, p) for m, p, _ in operations} >= REQUIRED
    described_tags = {tag["name"]: tag["description"] for tag in document["tags"]}
    operation_ids = [op["operationId"] for _, _, op in operations]
    assert len(operation_ids) == len(set(operation_ids)), "operationIds must be unique"
    problems = []
    for method, path, operation in operations:
        label = f"{method} {path}"
        tags = operation.get("tags") or []
        if len(tags) != 1 or not described_tags.get(tags[0]):
            problems.append(f"{label}: tags {tags} (each needs one described tag)")
        if not operation.get("summary") or "``" in operation["summary"]:
            problems.append(f"{label}: summary {operation.get('summary')!r}")
        responses = {int(status): body for status, body in operation["responses"].items()}
        if not any(200 <= status < 300 for status in responses):
            problems.append(f"{label}: no success answer documented")
        for status in (500, 503):
            if status not in responses:
                problems.append(f"{label}: {status} not documented")
        for status, body in responses.items():
            if not body.get("description"):
                problems.append(f"{label}: {status} has no description")
            if status >= 400 and not (path == "/api/health" and status == 503):
                if not error_schema_ok(document, body):
                    problems.append(f"{label}: {status} is not in the error format")
    assert not problems, "\n".join(problems)

    # Resources are tags, in words from the routers' docstrings.
    assert {"projects", "videos", "assets", "jobs", "settings", "health"} <= set(described_tags)
    by_route = {(m, p): op for m, p, op in operations}
    assert by_route[("GET", "/api/jobs")]["tags"] == ["jobs"]
    assert by_route[("GET", "/api/jobs")]["summary"] == "List jobs"  # from the view's name


async def test_uploads_and_file_answers_are_described(client) -> None:  # type: ignore[no-untyped-def]
    document = await (await client.get("/openapi.json")).get_json()
    paths = document["paths"]
    for path, fields in (
        ("/api/projects/{uuid}/videos", {"file"}),
        ("/api/assets", {"file", "type", "name"}),
        ("/api/fonts/convert", {"file"}),
    ):
        content = paths[path]["post"]["requestBody"]["content"]
        form = content["multipart/form-data"]["schema"]
        assert set(form["properties"]) == fields, path
        assert form["properties"]["file"] == {
            **form["properties"]["file"],
            "type": "string",
            "format": "binary",
        }
        assert "file" in form["required"], path
    assert "application/json" in paths["/api/assets"]["post"]["requestBody"]["content"]

    output = paths["/api/jobs/{uuid}/output"]["get"]["responses"]
    for status in ("200", "206"):
        media = output[status]["content"]["video/mp4"]["schema"]
        assert media == {"type": "string", "format": "binary"}
    assert "416" in output
    thumbnail = paths["/api/videos/{uuid}/thumbnail"]["get"]["responses"]["200"]
    assert set(thumbnail["content"]) == {"image/jpeg"}


async def test_docs_page_document_is_openapi_30(client) -> None:  # type: ignore[no-untyped-def]
    """What the bundled Swagger UI 4 reads: the same operations, in 3.0 terms only."""
    full = await (await client.get("/openapi.json")).get_json()
    view = await (await client.get("/docs/openapi.json")).get_json()
    assert full["openapi"].startswith("3.1") and view["openapi"] == "3.0.3"
    assert {(m, p) for m, p, _ in operations_of(view)} == {
        (m, p) for m, p, _ in operations_of(full)
    }
    for node in iter_nodes(view["components"]["schemas"]):
        if isinstance(node, dict):
            assert node.get("type") != "null" and not isinstance(node.get("type"), list), node
            assert "const" not in node, node
            assert not isinstance(node.get("exclusiveMinimum"), int | float) or isinstance(
                node.get("exclusiveMinimum"), bool
            ), node
    job = view["components"]["schemas"]["JobOut"]["properties"]
    assert job["started_at"]["nullable"] is True and job["started_at"]["type"] == "string"


async def test_token_scheme_is_optional_and_described(client) -> None:  # type: ignore[no-untyped-def]
    document = await (await client.get("/openapi.json")).get_json()
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert {} in document["security"] and {"bearer": []} in document["security"]
