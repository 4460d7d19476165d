"""ASGI entry for running under the ``hypercorn`` CLI with several workers::

    hypercorn --worker-class trio --workers 2 --bind 0.0.0.0:8000 stinercut_svc.asgi:app

Settings come from the environment, as for ``stinercut serve``.
"""

from .app import create_app
from .config import Settings

app = create_app(Settings.from_env())
