"""Access control (optional; ``AUTH_REQUIRED=true`` switches it on).

Modules, one concept each:

* ``roles`` - the roles and the one route -> required role table;
* ``tokens`` - the ``api_token`` table and the token functions (hashes only);
* ``access`` - who a caller is: trusted network, token, or nobody;
* ``guard`` - the ``before_request`` hook that applies the table to REST;
* ``hub`` - the same for the WebSocket hub (connect, and what a viewer may send);
* ``errors`` - the domain errors ``stinercut_svc/errors.py`` maps to 401/403.

Nothing is imported here: the CLI loads ``roles`` without the web framework.
"""
