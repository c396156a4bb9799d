"""docs/quickstart.md, executed: its steps as written, in a fresh virtualenv.

The wheel (built from the library alone) is found by ``pip install "s2s-auth[gunicorn]"``
through ``PIP_FIND_LINKS``, as the page says; everything else comes from the package
index. Then every marked block of the page runs in order (tests/package/steps.py):
``django-admin startproject``, the settings, the view, ``s2s_pki``, ``s2s_service``,
gunicorn from ``s2s_auth.tls.gunicorn_conf`` and the caller's code. The only change
made to the page's text is the port: ``127.0.0.1:8001`` becomes a free one.

A changed page whose steps no longer work fails here; so does a package that does not
install or serve the way the page says.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.package.conftest import REPO, run
from tests.package.steps import page_steps, steps
from tests.s2s_auth.tls.test_gunicorn import free_port, wait_for_port

pytestmark = pytest.mark.live

PAGE = REPO / "docs" / "quickstart.md"
DOC_PORT = "127.0.0.1:8001"
#: The snippets of docs/snippets/ that the page's steps run (checked by tests/docs).
SNIPPETS = {
    "quickstart_settings",
    "quickstart_view",
    "quickstart_urls",
    "quickstart_caller_settings",
    "quickstart_client",
}

# What the test asks the caller's project afterwards: each status the users service gave.
PROBE = """
import json
from django.conf import settings
import s2s_auth
from ads import users_api
from s2s_auth.client import ServiceClient, mtls_client

def call(client):
    response = client.get("api/v1/users/previews", params={"ids": "7"})
    return {"status": response.status_code, "body": response.json()}

print(json.dumps({
    "s2s_auth": s2s_auth.__file__,
    "mtls": call(users_api.users_client()),
    "jwt": call(users_api.users_jwt_client()),
    "anonymous": call(ServiceClient(
        settings.USERS_SERVICE_URL, ca_bundle=settings.BASE_DIR / "var/pki/ca.pem")),
    "stranger": call(mtls_client(settings.USERS_SERVICE_URL, service_name="stranger")),
}))
"""


def bash(code: str, *, cwd: Path, env: dict) -> str:
    return run(["bash", "-e", "-o", "pipefail", "-c", code], cwd=cwd, env=env, timeout=900)


@contextlib.contextmanager
def serving(code: str, *, cwd: Path, env: dict, port: int, log: Path):
    """The page's server command in its own process group, until the block ends."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            ["bash", "-e", "-c", code], cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        wait_for_port(port, proc, log, timeout=60)
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory, fresh_venv):
    """Run the page; while its server is up, ask the caller's project what it gets."""
    work = tmp_path_factory.mktemp("quickstart")
    env = fresh_venv.env
    port = free_port()
    outputs: list[str] = []
    server = None
    log = work / "gunicorn.log"
    with contextlib.ExitStack() as stack:
        for step in page_steps(PAGE):
            code = step.code.replace(DOC_PORT, f"127.0.0.1:{port}")
            if step.action == "run":
                outputs.append(bash(code, cwd=work / step.target, env=env))
            elif step.action == "append":
                with (work / step.target).open("a") as target:
                    target.write("\n" + code)
            elif step.action == "create":
                assert not (work / step.target).exists(), step.target
                (work / step.target).write_text(code)
            elif step.action == "serve":
                assert server is None, "one server"
                server = stack.enter_context(
                    serving(code, cwd=work / step.target, env=env, port=port, log=log)
                )
        assert server is not None, "the page starts no server"
        # A registered caller without the scope, for the 403 (the page's commands).
        bash(
            "python manage.py s2s_pki issue stranger\n"
            "python manage.py s2s_service add stranger --no-secret\n"
            "cp var/pki/stranger.pem var/pki/stranger.key ../ads/var/pki/\n",
            cwd=work / "users",
            env=env,
        )
        out = bash(f"python manage.py shell -c {shlex.quote(PROBE)}", cwd=work / "ads", env=env)
        probe = json.loads(out.strip().splitlines()[-1])
        yield SimpleNamespace(work=work, outputs=outputs, probe=probe, log=log, venv=fresh_venv)


def test_the_page_has_the_steps_this_test_expects():
    found = page_steps(PAGE)
    assert [s.action for s in found].count("serve") == 1
    assert {s.snippet for s in found if s.snippet} == SNIPPETS
    assert any(DOC_PORT in s.code for s in found if s.action == "serve")
    assert any("pip install" in s.code and "s2s-auth[gunicorn]" in s.code for s in found)
    assert any("django-admin startproject" in s.code for s in found)


def test_a_marker_with_an_unknown_action_or_language_is_an_error():
    with pytest.raises(ValueError, match="unknown"):
        steps("<!-- quickstart: deploy in . -->\n```sh\nx\n```\n")
    with pytest.raises(ValueError, match="```sh"):
        steps("<!-- quickstart: run in . -->\n```python\nx\n```\n")
    assert steps("<!-- quickstart: run in . -->\n\n```sh\nx\n```\n") == []  # not adjacent


def test_the_package_comes_from_the_wheel_not_the_repository(quickstart):
    site = str(quickstart.venv.path)
    assert quickstart.probe["s2s_auth"].startswith(site), quickstart.probe["s2s_auth"]
    assert "site-packages" in quickstart.probe["s2s_auth"]


def test_the_pages_own_calls_print_the_previews(quickstart):
    printed = [line for line in quickstart.outputs[-1].splitlines() if line.startswith("[")]
    mtls, jwt = printed
    assert mtls == "[{'id': 1, 'name': 'seller 1'}, {'id': 2, 'name': 'seller 2'}]"
    assert jwt == "[{'id': 3, 'name': 'seller 3'}]"


def test_granted_caller_over_mtls(quickstart):
    answer = quickstart.probe["mtls"]
    assert answer["status"] == 200, answer
    assert answer["body"]["caller"] == "spiffe://example.org/service/ads"
    assert answer["body"]["mechanism"] == "mtls"


def test_granted_caller_with_a_service_jwt(quickstart):
    answer = quickstart.probe["jwt"]
    assert answer["status"] == 200, answer
    assert answer["body"]["caller"] == "spiffe://example.org/service/ads"
    assert answer["body"]["mechanism"] == "service_jwt"


def test_no_credential_is_401(quickstart):
    answer = quickstart.probe["anonymous"]
    assert (answer["status"], answer["body"]["error"]) == (401, "not_authenticated")


def test_caller_without_the_scope_is_403(quickstart):
    answer = quickstart.probe["stranger"]
    assert (answer["status"], answer["body"]["error"]) == (403, "insufficient_scope")


def test_the_server_runs_the_shipped_configuration(quickstart):
    log = quickstart.log.read_text()
    assert "GET /api/v1/users/previews HTTP/1.1" in log  # the access log, no query string
    assert "ids=" not in log
    assert "Control socket listening" not in log  # gunicorn 27's shared socket stays off
