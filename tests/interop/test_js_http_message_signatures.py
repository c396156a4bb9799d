"""RFC 9421 against the JavaScript ``http-message-signatures`` npm package, both ways.

The package signs with its default parameters (``keyid``, ``alg``, ``created``,
``expires``; no nonce) over ``@method @authority @path @query`` (plus
``content-digest`` when there is a body), and s2s_auth's DRF mechanism is fed exactly
the bytes it produced; the package verifies the signatures of s2s_auth's client hook.
Node.js and the package (``npm ci --prefix tests/interop/js``) are needed, else skipped.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from django.core.management import call_command

from s2s_auth import audit
from s2s_auth.client.auth import ServiceCredentials, signature_auth
from s2s_auth.core.httpsig import algorithm_for_key
from s2s_auth.credentials.certificates import register_certificate
from s2s_auth.credentials.principals import ensure_principal
from s2s_auth.models import AuditRecord

PEER = "http-message-signatures (npm)"
JS_DIR = Path(__file__).resolve().parent / "js"
ORIGIN = "https://users.fleamarket.local:8443"
PATH = "/sig/scoped"
FIELDS = ["@method", "@authority", "@path", "@query"]


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed: the JavaScript interop tests need `node` on PATH")
    if not (JS_DIR / "node_modules" / "http-message-signatures").is_dir():
        pytest.skip(
            "the npm package http-message-signatures is not installed: "
            "run `npm ci --prefix tests/interop/js`"
        )
    return node


def js(**request) -> dict:
    """Run tests/interop/js/httpsig.js with one JSON request; its JSON answer."""
    done = subprocess.run(
        [_node(), str(JS_DIR / "httpsig.js")],
        input=json.dumps(request).encode(),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return json.loads(done.stdout)


@pytest.fixture
def creds(ca, db, settings):
    settings.S2S_AUTH = {
        "SERVICE_NAME": "users",
        "TRUST_DOMAIN": "fleamarket.local",
        "PKI_DIR": str(ca.directory),
        "HTTPSIG_ORIGIN": ORIGIN,
    }
    issued = ca.issue("js-signer")
    principal, _ = ensure_principal("js-signer", ["test:read"])
    register_certificate(principal, issued.cert_path.read_text())
    return ServiceCredentials.from_files(issued.cert_path, issued.key_path)


def js_signed(creds, method: str, url: str, body: bytes = b"", fields=None) -> dict:
    """The headers the package produces for this request, signed with creds' key."""
    headers = {"Content-Type": "application/json"} if body else {}
    fields = fields or ([*FIELDS, "content-digest"] if body else FIELDS)
    key_pem = creds.private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    answer = js(
        op="sign",
        method=method,
        url=url,
        headers=headers,
        body_b64=base64.b64encode(body).decode(),
        fields=fields,
        key_pem=key_pem,
        keyid=creds.fingerprint,
        alg=algorithm_for_key(creds.private_key),
    )
    return answer["headers"]


def send(client, method: str, path: str, headers: dict, body: bytes = b""):
    """The request as the package made it: its method, path, headers and body bytes."""
    meta = {
        "HTTP_" + name.upper().replace("-", "_"): value
        for name, value in headers.items()
        if name.lower() not in ("content-type", "content-length")
    }
    return client.generic(
        method, path, data=body, content_type=headers.get("Content-Type", ""), **meta
    )


@pytest.mark.interop(PEER, "its default parameters (no nonce) over @authority @path @query")
def test_package_signed_get_is_accepted_once(client, creds):
    audit.reset_writer_chains()
    headers = js_signed(creds, "GET", f"{ORIGIN}{PATH}?page=1")
    assert "nonce" not in headers["Signature-Input"]
    assert "expires=" in headers["Signature-Input"]  # the package's default, 300 s
    response = send(client, "GET", f"{PATH}?page=1", headers)
    assert response.status_code == 200, response.json()
    assert response.json()["mechanism"] == "http_signature"
    record = AuditRecord.objects.get(outcome="accepted", mechanism="http_signature")
    assert '"@authority": users.fleamarket.local:8443' in record.signature_base
    call_command("s2s_audit", "verify")  # the record re-verifies (CommandError if not)
    replay = send(client, "GET", f"{PATH}?page=1", headers)
    assert replay.status_code == 403
    assert replay.json()["error"] == "replayed_signature"


@pytest.mark.interop(PEER, "a POST with content-digest, checked against the body")
def test_package_signed_post_is_accepted(client, creds):
    body = b'{"x": 1}'
    headers = js_signed(creds, "POST", f"{ORIGIN}{PATH}", body)
    assert send(client, "POST", PATH, headers, body).status_code == 200
    tampered = js_signed(creds, "POST", f"{ORIGIN}{PATH}", body)
    response = send(client, "POST", PATH, tampered, b'{"x": 2}')
    assert response.status_code == 403
    assert response.json()["error"] == "digest_mismatch"


@pytest.mark.interop(PEER, "signed for another origin: refused")
def test_package_signed_for_another_port_is_refused(client, creds):
    headers = js_signed(creds, "GET", f"https://users.fleamarket.local:8444{PATH}")
    response = send(client, "GET", PATH, headers)
    assert response.status_code == 403
    assert response.json()["error"] == "bad_signature"


@pytest.mark.interop(PEER, "verifies s2s_auth client signatures (@target-uri, nonce)")
@pytest.mark.parametrize(("method", "body"), [("GET", None), ("POST", b'{"x": 1}')])
def test_package_verifies_our_client_signatures(creds, method, body):
    prepared = requests.Request(
        method, f"{ORIGIN}{PATH}?page=1", data=body, headers={"Content-Type": "application/json"}
    ).prepare()
    signature_auth(creds)(prepared)
    public_pem = (
        creds.chain[0]
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    check = {
        "op": "verify",
        "method": prepared.method,
        "headers": dict(prepared.headers),
        "key_pem": public_pem.decode(),
        "keyid": creds.fingerprint,
        "alg": algorithm_for_key(creds.private_key),
        "required_fields": ["@method", "@target-uri", "content-digest"],
    }
    assert js(**check, url=prepared.url) == {"verified": True}
    # The same headers on another URL: the package refuses them too.
    assert js(**check, url=prepared.url.replace("page=1", "page=2"))["verified"] is False
