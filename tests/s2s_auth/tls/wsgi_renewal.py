"""A WSGI app for the renewal tests: ``POST /token`` answers a token named after the
client certificate it came over (as a certificate-bound token is bound to it); every
other request echoes the TLS environ and the ``Authorization`` header."""

import json

from tests.s2s_auth.wsgi_echo import describe


def application(environ, start_response):
    info = describe(environ)
    if environ.get("REQUEST_METHOD") == "POST" and environ.get("PATH_INFO") == "/token":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        environ["wsgi.input"].read(length)
        body = {
            "access_token": f"bound-to-{info['fingerprint']}",
            "token_type": "Bearer",
            "expires_in": 300,
        }
    else:
        body = {**info, "authorization": environ.get("HTTP_AUTHORIZATION", "")}
    data = json.dumps(body).encode()
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
    )
    return [data]
