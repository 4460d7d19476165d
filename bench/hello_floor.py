"""The floor for HTTP ratios: a bare Quart-Trio "hello" app on Hypercorn's trio worker.

``bench/api.py`` starts this in a child process and measures it with the same load
generator, in the same run, as the service: no framework can answer faster than
this through Quart-Trio and Hypercorn, so the service's figures are printed as a
ratio of it. Run by hand: ``.venv/bin/python bench/hello_floor.py PORT``.
"""

from __future__ import annotations

import sys

import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from quart_trio import QuartTrio

app = QuartTrio(__name__)


@app.get("/")
async def hello() -> str:
    return "hello"


def main() -> None:
    config = Config()
    config.bind = [f"127.0.0.1:{int(sys.argv[1])}"]
    config.accesslog = None  # as the service at LOG_LEVEL=WARNING
    trio.run(serve, app, config)  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
