"""The echo app of ``tests.s2s_auth.wsgi_echo``, plus ``POST /body``, which reads the whole body.

For the slow-body test: a body that does not arrive within ``GUNICORN_BODY_TIMEOUT``
makes ``wsgi.input.read()`` raise, and the app answers 408.
"""

import json

from tests.s2s_auth import wsgi_echo


def application(environ, start_response):
    if environ.get("PATH_INFO") != "/body":
        return wsgi_echo.application(environ, start_response)
    try:
        payload, status = {"read": len(environ["wsgi.input"].read())}, "200 OK"
    except OSError:
        payload, status = {"error": "body_timeout"}, "408 Request Timeout"
    body = json.dumps(payload).encode()
    start_response(status, [("Content-Type", "application/json"),
                            ("Content-Length", str(len(body)))])  # fmt: skip
    return [body]
