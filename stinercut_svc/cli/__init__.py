"""The ``stinercut`` command line (typer): the service, its database, and a client.

* ``stinercut [serve]`` runs the service; ``stinercut migrate`` upgrades the schema
  (``serve.py``);
* ``stinercut tokens create|list|revoke`` manage API tokens on the database
  directly, with the service's configuration (``tokens.py``);
* ``stinercut jobs list|show|watch|cancel|retry``, ``render``, ``health`` talk to a
  running service over HTTP and the hub (``client.py``, ``watch.py``).

Exit code 2 means a usage or configuration error, as before the CLI used typer.
"""

from __future__ import annotations

from collections.abc import Sequence

import typer

from .. import SERVICE_NAME, __version__
from . import client, serve, tokens

app = typer.Typer(
    name="stinercut",
    help=f"{SERVICE_NAME} {__version__}: the render service and its operator tools.",
    invoke_without_command=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _default(ctx: typer.Context) -> None:
    """Without a command: serve (as ``stinercut serve``)."""
    if ctx.invoked_subcommand is None:
        serve.serve_command()


app.command("serve")(serve.serve_command)
app.command("migrate")(serve.migrate_command)
app.add_typer(tokens.app, name="tokens")
app.add_typer(client.jobs_app, name="jobs")
app.command("render")(client.render)
app.command("health")(client.health)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return its exit code (the ``stinercut`` entry point exits with it).

    Typer's standalone mode prints usage errors (exit 2) and handles Ctrl-C; it
    ends with ``SystemExit``, turned into a return value here.
    """
    command = typer.main.get_command(app)
    try:
        command.main(
            args=list(argv) if argv is not None else None,
            prog_name="stinercut",
            standalone_mode=True,
        )
    except SystemExit as exc:
        if exc.code is None:
            return 0
        return exc.code if isinstance(exc.code, int) else 1
    return 0
