"""Business logic behind the REST routers: one module per resource.

Database work here is plain synchronous functions taking a ``Session``; the
routers run them with ``app.db.run``. They return API-ready dictionaries (built
with the models' ``to_api()`` inside the transaction, so no lazy load happens
after the session is gone) and raise :class:`~stinercut_svc.errors.ApiError`.
"""
