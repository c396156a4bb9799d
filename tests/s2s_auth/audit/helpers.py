"""Helpers of the audit tests: sign real credentials, call the test views, run the command.

The test views (tests/s2s_auth/views_audit.py) verify a credential with the certificate
sent base64-encoded in ``X-Test-Cert``, so every record holds a real signature.
"""

from __future__ import annotations

import base64
import io
import time
import types

import pytest
from django.core.management import CommandError, call_command

from s2s_auth.core import httpsig
from s2s_auth.core import jose as tokens
from s2s_auth.models import AuditRecord

CALLER = "audit-caller"
AUDIENCE = "spiffe://fleamarket.local/service/users"
TABLE = AuditRecord._meta.db_table
WRITE_URL = "/audit-test/write"


_names = iter(range(10**6))


def mint(caller, **extra) -> str:
    now = int(time.time())
    claims = {
        "iss": caller.spiffe_id,
        "sub": caller.spiffe_id,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + 30,
        "jti": tokens.new_jti(),
        **extra,
    }
    return tokens.sign(claims, caller.key)


def cert_header(pem: str) -> str:
    return base64.b64encode(pem.encode()).decode()


def jwt_post(client, caller, query=None, body=b'{"x": 1}', token=None, pem=None):
    query = query or f"name=ok{next(_names)}"
    return client.post(
        f"{WRITE_URL}?{query}",
        data=body,
        content_type="application/json",
        headers={
            "Authorization": f"TestJWT {token or mint(caller)}",
            "X-Test-Cert": cert_header(pem or caller.chain_pem),
        },
    )


def signed_post(client, caller, query=None, body=b'{"signed": true}'):
    query = query or f"name=sig{next(_names)}"
    message = types.SimpleNamespace(
        method="POST",
        url=f"http://testserver{WRITE_URL}?{query}",
        headers={"Content-Type": "application/json"},
        body=body,
    )
    httpsig.sign_request(message, key_id=CALLER, private_key=caller.key)
    return client.post(
        f"{WRITE_URL}?{query}",
        data=body,
        content_type="application/json",
        headers={**message.headers, "X-Test-Cert": cert_header(caller.chain_pem)},
    )


def verify_command(*args) -> str:
    out = io.StringIO()
    call_command("s2s_audit", "verify", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def verify_fails(*args) -> str:
    with pytest.raises(CommandError) as excinfo:
        verify_command(*args)
    return str(excinfo.value)


def make_records(client, caller, n=3) -> list[AuditRecord]:
    for _ in range(n):
        assert jwt_post(client, caller, query=f"name=rec{next(_names)}").status_code == 200
    return list(AuditRecord.objects.order_by("id"))
