"""Client commands against a running service: ``jobs ...``, ``render``, ``health``.

They speak the service's public API only (httpx for REST, the hub for live
progress, see ``watch.py``), so they work against any instance an operator can
reach: ``--url`` or ``STINERCUT_URL`` (default ``http://127.0.0.1:8000``, the
service's default port), the token from ``STINERCUT_TOKEN`` (or ``--token``; the
environment keeps it out of ``ps`` and shell history).

Exit codes, for scripts: 0 success; 1 the service answered with an error, or the
job failed; 2 usage or configuration error; 3 the job was cancelled; 4 the
service could not be reached. ``--json`` prints the service's JSON instead of
tables (``jobs watch --json``: one hub message per line).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, Literal, NoReturn

import httpx
import typer
from rich.console import Console
from rich.table import Table

from . import watch

DEFAULT_URL = "http://127.0.0.1:8000"
TIMEOUT_S = 30.0

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CANCELLED = 3
EXIT_UNREACHABLE = 4
#: Exit code by a job's final status.
STATUS_EXIT = {"completed": EXIT_OK, "failed": EXIT_FAILED, "cancelled": EXIT_CANCELLED}

UrlOption = Annotated[
    str, typer.Option("--url", envvar="STINERCUT_URL", help="Base URL of the service.")
]
TokenOption = Annotated[
    str | None,
    typer.Option("--token", envvar="STINERCUT_TOKEN", show_default=False,
                 help="API token (better: the STINERCUT_TOKEN variable)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")]
StatusName = Literal["pending", "processing", "completed", "failed", "cancelled"]

jobs_app = typer.Typer(help="Render jobs of a running service.", no_args_is_help=True)


class ApiFailure(Exception):
    """The service answered with an error (its JSON error format)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status


class Unreachable(Exception):
    pass


class ServiceClient:
    """The service's REST API over one blocking httpx client."""

    def __init__(self, url: str, token: str | None) -> None:
        self.url = url.rstrip("/")
        self.token = token or None
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=TIMEOUT_S)

    def close(self) -> None:
        self.http.close()

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise Unreachable(f"cannot reach the service at {self.url}: {exc}") from None
        if response.status_code >= 400:
            code, message = "error", response.text[:300]
            try:
                body = response.json()
                error = body.get("error") or {}
                code = error.get("code") or code
                message = body.get("detail") or error.get("message") or message
            except (ValueError, AttributeError):
                pass
            raise ApiFailure(response.status_code, code, message)
        return response.json()

    def job(self, uuid: str) -> dict[str, Any]:
        return dict(self.call("GET", f"/api/jobs/{uuid}"))

    def active_jobs(self) -> list[dict[str, Any]]:
        jobs: list[dict[str, Any]] = []
        for status in watch.ACTIVE:
            jobs += self.call("GET", "/api/jobs", params={"status": status, "limit": 200})["items"]
        return jobs

    def feed(self) -> watch.HubFeed:
        try:
            return watch.HubFeed(self.url, self.token)
        except (OSError, watch.websocket.WebSocketException) as exc:
            raise Unreachable(f"cannot join the hub at {watch.hub_url(self.url)}: {exc}") from None


def _fail(message: str, code: int) -> NoReturn:
    print(f"stinercut: {message}", file=sys.stderr)
    raise typer.Exit(code)


@contextmanager
def service(url: str, token: str | None) -> Iterator[ServiceClient]:
    """A client for the command; failures become one stderr line and an exit code."""
    client = ServiceClient(url, token)
    try:
        yield client
    except ApiFailure as exc:
        _fail(str(exc), EXIT_FAILED)
    except Unreachable as exc:
        _fail(str(exc), EXIT_UNREACHABLE)
    except watch.HubClosed as exc:
        _fail(str(exc), EXIT_FAILED)
    except KeyboardInterrupt:
        _fail("interrupted (the job, if any, keeps running on the service)", 130)
    finally:
        client.close()


def _print_json(value: object) -> None:
    print(json.dumps(value, indent=2))


def _job_lines(job: dict[str, Any]) -> str:
    keys = ("uuid", "project_uuid", "status", "progress", "render_path", "created_at",
            "started_at", "completed_at", "output_path", "error_message")
    return "\n".join(f"{key:>13}: {job.get(key) if job.get(key) is not None else '-'}"
                     for key in keys)


def _project_labels(client: ServiceClient) -> Any:
    """``label(source)`` for progress bars: the project's name (read once) and the job."""
    names: dict[str, str] = {}

    def label(source: dict[str, Any]) -> str:
        project = str(source.get("project_uuid") or source.get("project") or "")
        job = str(source.get("uuid") or source.get("job") or "")
        if project and project not in names:
            try:
                names[project] = str(client.call("GET", f"/api/projects/{project}")["name"])
            except (ApiFailure, Unreachable, KeyError):
                names[project] = project[:8]
        return f"{names.get(project, '?')[:28]} · {job[:8]}"

    return label


# -- commands ---------------------------------------------------------------------


@jobs_app.command("list")
def jobs_list(
    status: Annotated[StatusName | None, typer.Option("--status", help="Only jobs in this state.")] = None,
    project: Annotated[str | None, typer.Option("--project", help="Only this project's jobs (uuid).")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=200)] = 50,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """List jobs, newest first."""
    params: dict[str, Any] = {"limit": limit}
    if status:
        params["status"] = status
    if project:
        params["project"] = project
    with service(url, token) as client:
        page = client.call("GET", "/api/jobs", params=params)
    if as_json:
        _print_json(page)
        return
    table = Table("job", "project", "status", "progress", "created", "path", "error", box=None)
    for job in page["items"]:
        table.add_row(
            job["uuid"], job["project_uuid"], job["status"], f"{job['progress']}%",
            str(job.get("created_at") or "-"), str(job.get("render_path") or "-"),
            (job.get("error_message") or "")[:40],
        )
    Console(width=200).print(table)
    print(f"{len(page['items'])} of {page['total']} jobs")


@jobs_app.command("show")
def jobs_show(
    uuid: Annotated[str, typer.Argument(metavar="UUID")],
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show one job."""
    with service(url, token) as client:
        job = client.job(uuid)
    if as_json:
        _print_json(job)
    else:
        print(_job_lines(job))


@jobs_app.command("cancel")
def jobs_cancel(
    uuid: Annotated[str, typer.Argument(metavar="UUID")],
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Cancel a pending or running job (answers once it is stopped)."""
    with service(url, token) as client:
        job = client.call("POST", f"/api/jobs/{uuid}/cancel")
    if as_json:
        _print_json(job)
    else:
        print(f"job {job['uuid']} {job['status']}")


@jobs_app.command("retry")
def jobs_retry(
    uuid: Annotated[str, typer.Argument(metavar="UUID")],
    wait: Annotated[bool, typer.Option("--wait", help="Follow the new job to its end.")] = False,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Render the job's project again with the same options (a new job)."""
    with service(url, token) as client:
        old = client.job(uuid)
        code = _render(client, old["project_uuid"], old.get("options") or {}, wait=wait,
                       as_json=as_json)
    raise typer.Exit(code)


@jobs_app.command("watch")
def jobs_watch(
    until_idle: Annotated[bool, typer.Option("--until-idle", help="Exit once no job is pending or running.")] = False,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Live progress bars (with the service's ETA) for every running job; Ctrl-C ends."""
    with service(url, token) as client:
        feed = client.feed()
        print(f"watching jobs on {client.url} (Ctrl-C to stop)", file=sys.stderr, flush=True)
        console = Console(quiet=True) if as_json else Console()
        try:
            with watch.JobBoard(console, _project_labels(client)) as board:
                watch.follow(
                    feed, board,
                    resync=lambda: _resync(client, board),
                    done=lambda: until_idle and not board.active,
                    on_message=watch.print_json_line if as_json else None,
                )
        except KeyboardInterrupt:
            pass  # the normal way to stop watching (the board has printed its last state)
        finally:
            feed.close()


def _resync(client: ServiceClient, board: watch.JobBoard) -> list[dict[str, Any]]:
    """Active jobs, plus the final state of those the board still shows as active."""
    views = {job["uuid"]: job for job in client.active_jobs()}
    for job in board.active:
        if job not in views:
            views[job] = client.job(job)
    return list(views.values())


def render(
    project: Annotated[str, typer.Argument(metavar="PROJECT", help="The project's uuid.")],
    options: Annotated[str | None, typer.Option("--options", help="Render options as a JSON object (override the project's).")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Show progress; exit 0 on completed, 1 failed, 3 cancelled.")] = False,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Queue a render of PROJECT (and with --wait follow it to its end)."""
    body: dict[str, Any] | None = None
    if options is not None:
        try:
            body = json.loads(options)
        except ValueError as exc:
            _fail(f"--options is not JSON: {exc}", 2)
        if not isinstance(body, dict):
            _fail("--options must be a JSON object", 2)
    with service(url, token) as client:
        code = _render(client, project, body, wait=wait, as_json=as_json)
    raise typer.Exit(code)


def _render(
    client: ServiceClient, project: str, body: dict[str, Any] | None, *, wait: bool, as_json: bool
) -> int:
    # The feed is joined before the job exists, so none of its messages is missed.
    feed = client.feed() if wait else None
    try:
        job = client.call("POST", f"/api/projects/{project}/render", json=body)
        if feed is None:
            if as_json:
                _print_json(job)
            else:
                print(f"job {job['uuid']} {job['status']}")
            return EXIT_OK
        uuid = job["uuid"]
        console = Console(quiet=True) if as_json else Console(stderr=True)
        with watch.JobBoard(console, _project_labels(client)) as board:
            board.job(job)
            watch.follow(
                feed, board,
                resync=lambda: [client.job(uuid)],
                done=lambda: board.states.get(uuid) in watch.FINISHED,
            )
        final = client.job(uuid)
    finally:
        if feed is not None:
            feed.close()
    if as_json:
        _print_json(final)
    else:
        detail = final.get("output_path") or final.get("error_message") or ""
        print(f"job {uuid} {final['status']}" + (f": {detail}" if detail else ""))
    return STATUS_EXIT.get(final["status"], EXIT_FAILED)


def health(
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """The service's health; exit 0 when healthy or degraded, 1 when unhealthy."""
    with service(url, token) as client:
        try:
            answer = client.http.get("/api/health")
        except httpx.TransportError as exc:
            raise Unreachable(f"cannot reach the service at {client.url}: {exc}") from None
    try:
        body = answer.json()
    except ValueError:
        _fail(f"/api/health answered {answer.status_code} without JSON", EXIT_FAILED)
    if as_json:
        _print_json(body)
    else:
        print(f"{body.get('status')} ({body.get('service')} {body.get('version')}, {client.url})")
        for check, line in (body.get("details") or {}).items():
            print(f"  {check:>10}: {line}")
    if answer.status_code != 200:
        raise typer.Exit(EXIT_FAILED)
