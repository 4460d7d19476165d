"""Error answers never show absolute server paths or Python class names.

Every HTTP route of the app (walked from its URL map, so routes added later are
swept too) is called with inputs that fail in different places: ids that do not
exist or do not parse, bodies that are not JSON, paths outside the storage, an
absolute path *inside* the storage, uploads that are not media. Each error
answer (status >= 400) is then checked for the storage root (as configured and
resolved), the test's temporary folders, typical server folders, and names of
exception classes, tracebacks or internal modules.
"""

from __future__ import annotations

import re
import uuid as uuidlib
from pathlib import Path
from typing import Any

import httpx
from werkzeug.routing import Rule

from stinercut_svc.context import StinercutApp

#: A Python exception class name (``ValueError``, ``UnsafePathError``, ``ExceptionGroup``).
CLASS_NAME = re.compile(r"\b[A-Z][A-Za-z0-9_]*(?:Error|Exception|Warning|Group)\b")
INTERNALS = ("Traceback", "<class", 'File "', ".py", "pydantic", "sqlalchemy", "pymysql", "trio.")
SERVER_FOLDERS = ("/tmp/", "/work/", "/usr/", "/root/", "/home/", "/var/", "/proc/", "/etc/")
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def fill(rule: Rule, values: dict[str, str]) -> str:
    path = rule.rule
    for name in rule.arguments:
        path = re.sub(rf"<(?:[^:<>]+:)?{name}>", values.get(name, "x"), path)
    return path


def bodies(storage_root: Path) -> list[dict[str, Any]]:
    """Request bodies (httpx keyword arguments) that fail in different layers."""
    inside = storage_root / "uploads" / "nothing-here.mp4"
    return [
        {},
        {"content": b"{not json", "headers": {"Content-Type": "application/json"}},
        {"json": {"path": "../../../etc/passwd"}},
        {"json": {"path": str(inside)}},
        {"json": {"path": str(inside), "type": "watermark"}},
        {"json": {"path": "/etc/hostname", "type": "intro"}},
        {"json": {"value": "loud"}},
        {"json": {"name": "x", "unexpected": 1}},
        {
            "data": {"type": "intro", "name": "bad"},
            "files": {"file": ("bogus.mp4", b"\x00\x01 not a video" * 64, "video/mp4")},
        },
        {"files": {"file": ("font.ttf", b"OTTO-broken" * 32, "font/ttf")}},
    ]


def leaks(text: str, forbidden: list[str]) -> list[str]:
    found = [f"path {item!r}" for item in forbidden if item in text]
    found += [f"class name {m.group(0)!r}" for m in CLASS_NAME.finditer(text)]
    found += [f"internal {item!r}" for item in INTERNALS if item in text]
    return found


async def test_error_answers_carry_no_paths_or_class_names(
    app: StinercutApp, live_url: str, tmp_path: Path
) -> None:
    root = app.storage.root
    forbidden = sorted(
        {str(root), str(root.resolve()), str(tmp_path), str(tmp_path.resolve()), *SERVER_FOLDERS},
        key=len,
        reverse=True,
    )
    async with httpx.AsyncClient(timeout=30) as http:
        project = (await http.post(f"{live_url}/api/projects", json={"name": "leaks"})).json()
        id_sets = [
            {"uuid": str(uuidlib.uuid4()), "key": "no.such.key", "name": "../../secret.txt"},
            {"uuid": "not-a-uuid", "key": "render.music_volume", "name": "..%2fsecret.txt"},
            # A real project: the routes under /api/projects/<uuid> get past the lookup.
            {"uuid": project["uuid"], "key": "render.watermark_scale", "token": "x" * 32},
        ]
        problems: list[str] = []
        answers = 0
        for rule in app.url_map.iter_rules():
            if rule.websocket:
                continue
            for method in sorted(set(rule.methods or ()) & set(METHODS)):
                for values in id_sets:
                    url = f"{live_url}{fill(rule, values)}"
                    for body in bodies(root) if method != "GET" else [{}]:
                        response = await http.request(method, url, **body)
                        if response.status_code < 400:
                            continue
                        answers += 1
                        text = response.text
                        problems += [
                            f"{method} {url.removeprefix(live_url)} -> {response.status_code}: {p}"
                            for p in leaks(text, forbidden)
                        ]
                        if response.headers.get("content-type", "").startswith("application/json"):
                            payload = response.json()
                            assert payload["detail"] == payload["error"]["message"], text
                        else:
                            problems.append(f"{method} {url} -> {response.status_code}: not JSON")
    assert answers > 200, answers  # the sweep really provoked errors everywhere
    assert not problems, "\n".join(sorted(set(problems))[:60])


def test_the_sweep_recognises_leaks() -> None:
    """The detector itself: what it must flag, and an ordinary message it must not."""
    forbidden = ["/srv/store"]
    assert leaks("cannot open /srv/store/uploads/a.mp4", forbidden)
    assert leaks("invalid: ValueError('x')", forbidden)
    assert leaks("UnsafePathError: outside", forbidden)
    assert leaks('Traceback (most recent call last): File "x.py"', forbidden)
    assert not leaks(
        "project 0b6e… does not exist; no route for GET /api/nothing; Internal Server Error",
        forbidden,
    )
