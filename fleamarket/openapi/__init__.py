"""The services' OpenAPI 3.1 contract (drf-spectacular), from the deployment's side.

* :mod:`.settings` — ``SPECTACULAR_SETTINGS`` for a service (plain data: safe to import
  from a settings module);
* :mod:`.schemes` — one ``OpenApiAuthenticationExtension`` per s2s_auth mechanism, so
  every operation lists the credentials it accepts and the scopes it needs (the
  library stays free of drf-spectacular);
* :mod:`.schema` — the ``AutoSchema`` that adds the error answers every operation
  can give and names the accepted credentials in each description;
* :mod:`.urls` — ``/api/schema/`` and its browsable UIs.
"""
