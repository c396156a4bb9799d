"""Static checks of the container deployment (docker/): no Docker engine, no network.

The compose file, the Dockerfile, the nginx config and the helper scripts are read
and cross-checked against the repository: every file, module, secret, volume and
service they name must exist; healthchecks and start order must make sense; the
image must not run as root or carry secrets; the proxy must pass the client
certificate the way s2s_auth reads it. The helper scripts are also run for real
(in temp directories, on loopback).
"""

from __future__ import annotations

import datetime as dt
import http.server
import importlib.util
import ipaddress
import os
import re
import shlex
import ssl
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml
from cryptography import x509

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
COMPOSE = DOCKER / "compose.yaml"
DOCKERFILE = DOCKER / "Dockerfile"
NGINX_CONF = DOCKER / "proxy" / "nginx.conf"
APP_DIR = "/app"  # WORKDIR of the image: /app/<path> is <repo>/<path>

REQUIRED_SERVICES = {"postgres", "redis", "init", "users", "ads", "worker", "beat", "proxy"}
ONE_SHOT = {"init"}
VALID_CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}
#: Environment variables the compose file sets that nothing in the repository reads
#: yet: settings changes proposed in docs/deployment.md.
PROPOSED_ENV = {"S2S_TRUSTED_PROXIES"}


def load_module(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


deploy_init = load_module(DOCKER / "bin" / "deploy_init.py", "deploy_init")
make_secrets = load_module(DOCKER / "bin" / "make_secrets.py", "make_secrets")
healthcheck = load_module(DOCKER / "bin" / "healthcheck.py", "docker_healthcheck")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def built_here(service: dict) -> bool:
    return "build" in service


def env_of(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def default_of(value: str) -> str:
    """Compose interpolation with the defaults: ``${X:-d}`` -> ``d``."""
    return re.sub(r"\$\{[A-Z0-9_]+:-([^}]*)\}", r"\1", value)


def volume_targets(service: dict) -> dict[str, str]:
    """mount target -> source (named volume or bind path)."""
    mounts = {}
    for item in service.get("volumes", []):
        if isinstance(item, dict):
            mounts[item["target"]] = item["source"]
        else:
            source, target = item.split(":")[:2]
            mounts[target] = source
    return mounts


def command_list(value) -> list[str]:
    if value is None:
        return []
    return shlex.split(value) if isinstance(value, str) else [str(v) for v in value]


def repo_path(container_path: str) -> Path:
    """A path in the image (absolute under /app or relative to WORKDIR) in the repo."""
    if container_path.startswith(APP_DIR + "/"):
        container_path = container_path[len(APP_DIR) + 1 :]
    assert not container_path.startswith("/"), f"{container_path} is not in the image's /app"
    return ROOT / container_path


def module_exists(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


# --- compose: structure and references ----------------------------------------------


def test_compose_has_every_service(services):
    assert set(services) >= REQUIRED_SERVICES, REQUIRED_SERVICES - set(services)


def test_build_context_and_dockerfile_exist(services):
    built = [name for name, s in services.items() if built_here(s)]
    assert {"init", "users", "ads", "worker", "beat"} <= set(built)
    for name in built:
        build = services[name]["build"]
        context = (DOCKER / build["context"]).resolve()
        assert context == ROOT, f"{name}: build context {context} is not the repository"
        assert (context / build["dockerfile"]).is_file()


def test_external_images_are_pinned(services):
    for name, service in services.items():
        if built_here(service):
            continue
        image = service["image"]
        _repo, _, tag = image.partition(":")
        assert tag and tag != "latest", f"{name}: {image} is not pinned"
        # a release (PostgreSQL's are major.minor, Prometheus's v-prefixed), not a moving
        # major tag like "17"
        assert re.fullmatch(r"v?\d+\.\d+(\.\d+)?(-[\w.]+)?(@sha256:[0-9a-f]{64})?", tag), (
            f"{name}: {image} is not pinned to a release"
        )


def test_config_files_exist(compose, services):
    configs = compose.get("configs", {})
    for name, config in configs.items():
        assert (DOCKER / config["file"]).is_file(), f"config {name}: {config['file']}"
    for name, service in services.items():
        for item in service.get("configs", []):
            source = item["source"] if isinstance(item, dict) else item
            assert source in configs, f"{name}: config {source} is not declared"


def test_env_files_exist(services):
    for name, service in services.items():
        files = service.get("env_file", [])
        for item in [files] if isinstance(files, str) else files:
            path = item["path"] if isinstance(item, dict) else item
            assert (DOCKER / path).is_file(), f"{name}: env_file {path}"


def test_volumes_are_declared_and_bind_mounts_exist(compose, services):
    declared = set(compose.get("volumes", {}))
    used = set()
    for name, service in services.items():
        for target, source in volume_targets(service).items():
            assert target.startswith("/"), f"{name}: {target}"
            if source.startswith((".", "/")):
                assert (DOCKER / source).exists(), f"{name}: bind mount {source}"
            else:
                assert source in declared, f"{name}: volume {source} is not declared"
                used.add(source)
    assert declared == used, f"declared but unused volumes: {declared - used}"


def test_secret_files_are_made_by_make_secrets(compose, services, tmp_path):
    """The secret files are not in the repo: make_secrets.py creates every one of them."""
    declared = compose["secrets"]
    made = set(make_secrets.write(tmp_path))
    assert made == set(make_secrets.NAMES)
    default_dir = make_secrets.DEFAULT_DIR.resolve()
    for name, secret in declared.items():
        path = (DOCKER / secret["file"]).resolve()
        assert path.parent == default_dir, f"secret {name}: {path} is not in {default_dir}"
        assert path.name in made, f"secret {name}: make_secrets.py does not create {path.name}"
    assert "var/" in (ROOT / ".gitignore").read_text().split(), "var/ must stay uncommitted"
    for name, service in services.items():
        for secret in service.get("secrets", []):
            source = secret["source"] if isinstance(secret, dict) else secret
            assert source in declared, f"{name}: secret {source} is not declared"


def test_file_variables_point_at_the_service_own_secrets(services):
    for name, service in services.items():
        mounted = {s if isinstance(s, str) else s["source"] for s in service.get("secrets", [])}
        for key, value in env_of(service).items():
            if key.endswith("_FILE") and value.startswith("/run/secrets/"):
                assert value.rsplit("/", 1)[1] in mounted, f"{name}: {key}={value} not mounted"


def test_only_the_init_job_sees_both_databases(services):
    for name, service in services.items():
        secrets = {s if isinstance(s, str) else s["source"] for s in service.get("secrets", [])}
        if name != "init":
            assert not {"users_database_url", "ads_database_url"} <= secrets, name
        if name in {"users", "ads", "worker", "beat", "pki", "proxy"}:
            assert "postgres_password" not in secrets, name


def test_no_secret_values_in_the_environment(services):
    suspicious = re.compile(r"PASSWORD|SECRET|TOKEN|PRIVATE|_KEY$")
    for name, service in services.items():
        for key, value in env_of(service).items():
            # a path names a file (a secret or the service's key in its PKI volume)
            if suspicious.search(key) and not value.startswith("/"):
                pytest.fail(f"{name}: {key} holds a value; pass it as a *_FILE secret")
            assert "://" not in value or "@" not in value, f"{name}: {key} has credentials"


def test_django_services_run_without_debug(services):
    for name in ("init", "users", "ads", "worker", "beat"):
        env = env_of(services[name])
        assert env.get("DJANGO_DEBUG") == "0", name


def test_environment_variables_are_read_somewhere(services):
    """A typo in a variable name would silently fall back to a default."""
    sources = "\n".join(
        path.read_text()
        for folder in ("fleamarket", "users", "ads", "s2s_auth", "docker")
        for path in (ROOT / folder).rglob("*")
        if path.suffix in {".py", ".sh"} and path.is_file()
    )
    for name in ("init", "pki", "users", "ads", "worker", "beat"):
        for key in env_of(services[name]):
            base = key.removesuffix("_FILE") if key != "SECRET_KEY_FILE" else key
            if key in PROPOSED_ENV:
                continue
            assert key in sources or base in sources, f"{name}: nothing reads {key}"


# --- compose: commands -----------------------------------------------------------------


def test_app_services_commands_exist(services):
    for name, service in services.items():
        if not built_here(service):
            continue
        env = env_of(service)
        command = command_list(service.get("command"))
        assert command, f"{name}: no command"
        if command[0] == "serve":
            assert module_exists(env["WSGI_MODULE"]), f"{name}: {env['WSGI_MODULE']}"
            assert env["WSGI_MODULE"] == env["DJANGO_SETTINGS_MODULE"].replace(".settings", ".wsgi")
        elif command[0] == "python":
            assert repo_path(command[1]).is_file(), f"{name}: {command[1]}"
        elif command[0] == "celery":
            app = command[command.index("-A") + 1]
            assert module_exists(app), f"{name}: celery app {app}"
            assert command[command.index("-A") + 2] in {"worker", "beat"}
        else:
            pytest.fail(f"{name}: unexpected command {command}")
        if "DJANGO_SETTINGS_MODULE" in env:
            assert module_exists(env["DJANGO_SETTINGS_MODULE"]), name


def test_entrypoint_serves_gunicorn_with_the_config():
    text = (DOCKER / "entrypoint.sh").read_text()
    match = re.search(r"exec gunicorn -c (\S+)", text)
    assert match, "entrypoint.sh does not start gunicorn"
    # s2s_auth's shipped configuration, imported from the package the image copies.
    assert match.group(1) == "python:s2s_auth.tls.gunicorn_conf"
    assert module_exists(match.group(1).removeprefix("python:"))
    assert "$WSGI_MODULE" in text


def test_proxy_entrypoint_and_config_are_mounted(services, compose):
    proxy = services["proxy"]
    targets = {c["target"]: compose["configs"][c["source"]]["file"] for c in proxy["configs"]}
    entry = command_list(proxy["entrypoint"])
    assert entry[-1] in targets, "the proxy's entrypoint script is not mounted"
    assert targets["/etc/nginx/nginx.conf"] == "./proxy/nginx.conf"


# --- compose: health and start order ---------------------------------------------------


def test_long_running_services_have_healthchecks(services):
    for name, service in services.items():
        if name in ONE_SHOT:
            assert service.get("restart") == "no", f"{name}: a one-shot job must not restart"
            continue
        check = service.get("healthcheck")
        assert check and not check.get("disable"), f"{name}: no healthcheck"
        test = command_list(check["test"])
        assert test[0] in {"CMD", "CMD-SHELL"}, name
        words = shlex.split(test[1]) if test[0] == "CMD-SHELL" else test[1:]
        for word in words:
            if word.startswith(APP_DIR + "/"):
                assert repo_path(word).is_file(), f"{name}: healthcheck uses {word}"


def test_probes_use_the_service_ca_and_open_paths(services):
    for name in ("users", "ads"):
        env = env_of(services[name])
        assert env["TLS_CA"] == "/pki/ca.pem" and "TLS_CERT" in env and "TLS_KEY" in env
        test = command_list(services[name]["healthcheck"]["test"])
        assert "/app/docker/bin/healthcheck.py" in test
        url = next(w for w in test if w.startswith("https://"))
        assert url.startswith("https://localhost:8000/")


def test_depends_on_conditions(services):
    for name, service in services.items():
        depends = service.get("depends_on", {})
        assert isinstance(depends, dict), f"{name}: use the long depends_on syntax"
        for target, spec in depends.items():
            assert target in services, f"{name} depends on unknown {target}"
            condition = spec["condition"]
            assert condition in VALID_CONDITIONS, f"{name}: {condition}"
            if condition == "service_healthy":
                assert "healthcheck" in services[target], f"{name}: {target} has no healthcheck"
            if condition == "service_completed_successfully":
                assert target in ONE_SHOT, f"{name}: {target} never completes"
    for name in ("users", "ads", "worker", "beat", "proxy", "pki"):
        assert services[name]["depends_on"]["init"]["condition"] == (
            "service_completed_successfully"
        )
    for name in ("users", "ads", "worker"):
        for target in ("postgres", "redis"):
            assert services[name]["depends_on"][target]["condition"] == "service_healthy"


def test_depends_on_has_no_cycle(services):
    state: dict[str, str] = {}

    def visit(name, path):
        if state.get(name) == "done":
            return
        assert state.get(name) != "active", f"cycle: {' -> '.join([*path, name])}"
        state[name] = "active"
        for target in services[name].get("depends_on", {}):
            visit(target, [*path, name])
        state[name] = "done"

    for name in services:
        visit(name, [])


# --- compose: PKI volumes, networks, the trusted proxy ------------------------------------


def test_each_service_mounts_only_its_own_pki(services):
    for name in ("users", "ads", "worker"):
        assert volume_targets(services[name]) == {"/pki": f"pki-{name}"}, name
    assert volume_targets(services["proxy"]) == {"/etc/nginx/pki": "pki-proxy"}
    # Only the init job and the pki keeper see the CA's private keys.
    holders = {n for n, s in services.items() if "pki-ca" in volume_targets(s).values()}
    assert holders == {"init", "pki"}
    for name in ("init", "pki"):
        env = env_of(services[name])
        mounts = volume_targets(services[name])
        assert mounts[env["S2S_PKI_DIR"]] == "pki-ca"
        for cert_name in deploy_init.CERT_NAMES:
            assert mounts[f"{env['PKI_OUT_DIR']}/{cert_name}"] == f"pki-{cert_name}"


def test_worker_calls_users_as_worker(services):
    env = env_of(services["worker"])
    assert env["JOBS_IDENTITY"] == "worker"
    assert volume_targets(services["worker"])["/pki"] == "pki-worker"
    assert env["S2S_ISSUER"].startswith("https://users:")  # the token endpoint's origin
    assert "worker" in deploy_init.PRINCIPALS


def test_tls_files_are_the_service_own(services):
    for name in ("users", "ads"):
        env = env_of(services[name])
        assert env["TLS_CERT"] == f"/pki/{name}.pem" and env["TLS_KEY"] == f"/pki/{name}.key"
        assert env["S2S_PKI_DIR"] == "/pki"


def test_users_trusts_exactly_the_proxy_address(compose, services):
    proxy_networks = services["proxy"]["networks"]
    assert list(proxy_networks) == ["edge"], "the proxy must sit on the edge network only"
    proxy_ip = ipaddress.ip_address(default_of(proxy_networks["edge"]["ipv4_address"]))
    trusted = env_of(services["users"])["S2S_TRUSTED_PROXIES"]
    networks = [ipaddress.ip_network(default_of(item)) for item in trusted.split(",")]
    assert networks == [ipaddress.ip_network(f"{proxy_ip}/32")]
    assert "edge" in services["users"]["networks"]
    ipam = compose["networks"]["edge"]["ipam"]["config"][0]
    subnet = ipaddress.ip_network(default_of(ipam["subnet"]))
    dynamic = ipaddress.ip_network(default_of(ipam["ip_range"]))
    assert proxy_ip in subnet
    assert proxy_ip not in dynamic, "another container could be given the proxy's address"
    assert dynamic.subnet_of(subnet)
    # Nobody else trusts a proxy header.
    for name in ("ads", "worker", "beat"):
        assert "S2S_TRUSTED_PROXIES" not in env_of(services[name]), name


def test_backend_is_internal_and_redis_postgres_stay_there(compose, services):
    assert compose["networks"]["backend"].get("internal") is True
    for name in ("postgres", "redis"):
        assert services[name]["networks"] == ["backend"]
        assert "ports" not in services[name]


def test_settings_read_trusted_proxies_from_the_environment(tmp_path):
    code = (
        "from fleamarket.settings import base_settings;"
        "print(base_settings('users')['S2S_AUTH'].get('TRUSTED_PROXIES'))"
    )
    env = {**os.environ, "VAR_DIR": str(tmp_path), "S2S_TRUSTED_PROXIES": "172.30.0.10/32"}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert out.stdout.strip() == "['172.30.0.10/32']", out.stderr


# --- Dockerfile lint -------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    lines, current = [], ""
    for raw in DOCKERFILE.read_text().splitlines():
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        current += " " + stripped.rstrip("\\").strip()
        if not stripped.endswith("\\"):
            keyword, _, rest = current.strip().partition(" ")
            lines.append((keyword.upper(), rest.strip()))
            current = ""
    return lines


def test_dockerfile_base_images_are_pinned_and_multi_stage():
    instructions = dockerfile_instructions()
    args = dict(
        rest.split("=", 1) for keyword, rest in instructions if keyword == "ARG" and "=" in rest
    )
    froms = [rest for keyword, rest in instructions if keyword == "FROM"]
    assert len(froms) >= 2, "build wheels in one stage, copy them into the runtime"
    for line in froms:
        image = line.split()[0]
        image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image)
        assert re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?(@sha256:[0-9a-f]{64})?", image), image


def test_dockerfile_runs_as_non_root_with_an_entrypoint_and_healthcheck():
    instructions = dockerfile_instructions()
    keywords = [k for k, _ in instructions]
    users = [rest for k, rest in instructions if k == "USER"]
    assert users, "no USER"
    assert users[-1].split(":")[0] not in {"root", "0"}
    assert keywords.index("USER") < keywords.index("CMD")
    assert "HEALTHCHECK" in keywords
    for keyword in ("CMD", "ENTRYPOINT"):
        rest = next(r for k, r in instructions if k == keyword)
        assert rest.startswith("["), f"{keyword} should use the exec form"
    entrypoint = next(r for k, r in instructions if k == "ENTRYPOINT")
    assert repo_path(entrypoint.strip('[]"')).is_file()
    workdirs = [r for k, r in instructions if k == "WORKDIR"]
    assert workdirs[-1] == APP_DIR


def test_dockerfile_has_no_add_of_urls_and_no_baked_secrets():
    instructions = dockerfile_instructions()
    for keyword, rest in instructions:
        assert keyword != "ADD" or "://" not in rest, f"ADD of a URL: {rest}"
        if keyword in {"ENV", "ARG"}:
            for name in re.findall(r"(\w+)=", rest) or [rest.split()[0]]:
                assert not re.search(r"PASSWORD|SECRET|TOKEN|_KEY$|DATABASE_URL", name), name
        if keyword == "COPY":
            assert "var" not in rest.split()[:-1] and ".key" not in rest and ".env" not in rest


def test_dockerfile_python_and_pip_hygiene():
    text = DOCKERFILE.read_text()
    assert "PYTHONDONTWRITEBYTECODE=1" in text
    for keyword, rest in dockerfile_instructions():
        if keyword == "RUN" and re.search(r"pip (install|wheel)", rest):
            assert "--no-cache-dir" in rest, rest
            assert "-r " in rest, "install the pinned requirements"
    assert "apt-get" not in text or "rm -rf /var/lib/apt/lists" in text


def test_dockerfile_copies_what_the_services_run_and_dockerignore_keeps_state_out():
    copied = set()
    for keyword, rest in dockerfile_instructions():
        if keyword == "COPY" and "--from" not in rest:
            *sources, _ = rest.split()
            for source in sources:
                assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
                copied.add(source.rstrip("/"))
    assert {"manage.py", "fleamarket", "s2s_auth", "users", "ads", "docker"} <= copied
    ignore = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert ignore[0] == "*", "allow-list the build context"
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    assert copied - {"requirements.txt"} <= allowed and "requirements.txt" in allowed
    assert not allowed & {"var", ".venv", "tests", ".git"}
    assert "**/*.key" in ignore


# --- gunicorn config --------------------------------------------------------------------


def run_gunicorn_conf(env: dict[str, str]) -> subprocess.CompletedProcess:
    code = (
        "import json, ssl;"
        "import s2s_auth.tls.gunicorn_conf as conf; ns = vars(conf);"
        "keys = ['bind', 'workers', 'threads', 'worker_class', 'certfile', 'keyfile',"
        " 'ca_certs', 'cert_reqs'];"
        "print(json.dumps({k: ns.get(k) for k in keys}))"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TLS_", "GUNICORN_"))}
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_gunicorn_conf_without_environment():
    import json

    out = run_gunicorn_conf({})
    assert out.returncode == 0, out.stderr
    conf = json.loads(out.stdout)
    assert conf["bind"] == ["0.0.0.0:8000"]
    assert conf["worker_class"] == "s2s_auth.tls.gunicorn.TLSWorker"
    assert conf["certfile"] is None


def test_gunicorn_conf_with_the_compose_tls_environment(services):
    import json

    env = env_of(services["users"])
    compose_env = {k: default_of(v) for k, v in env.items() if k.startswith(("TLS_", "GUNICORN_"))}
    out = run_gunicorn_conf(compose_env)
    assert out.returncode == 0, out.stderr
    conf = json.loads(out.stdout)
    assert conf["bind"] == ["0.0.0.0:8000"]
    assert (conf["certfile"], conf["keyfile"], conf["ca_certs"]) == (
        "/pki/users.pem",
        "/pki/users.key",
        "/pki/ca.pem",
    )
    assert conf["cert_reqs"] == ssl.CERT_OPTIONAL
    assert conf["workers"] == 2 and conf["threads"] == 4


def test_gunicorn_conf_refuses_tls_without_a_ca():
    out = run_gunicorn_conf({"TLS_CERT": "/pki/users.pem", "TLS_KEY": "/pki/users.key"})
    assert out.returncode != 0 and "TLS_CA" in out.stderr


# --- nginx --------------------------------------------------------------------------------


def nginx_directives() -> list[tuple[str, list[str], tuple[str, ...]]]:
    """(name, args, enclosing blocks) of every directive; braces must balance."""
    text = re.sub(r"#[^\n]*", "", NGINX_CONF.read_text())
    tokens = re.findall(r'"[^"]*"|[{};]|[^\s{};]+', text)
    directives, stack, current = [], [], []
    for token in tokens:
        if token == "{":
            stack.append(" ".join(current))
            current = []
        elif token == "}":
            assert not current, f"unterminated directive {current}"
            stack.pop()
        elif token == ";":
            directives.append((current[0], current[1:], tuple(stack)))
            current = []
        else:
            current.append(token)
    assert not stack and not current, "unbalanced nginx.conf"
    return directives


def in_location(path: str):
    return [(n, a) for n, a, blocks in nginx_directives() if f"location = {path}" in blocks]


def test_nginx_requires_client_certificates_from_the_ca():
    directives = nginx_directives()
    server = [(n, a) for n, a, blocks in directives if any(b == "server" for b in blocks)]
    assert ("ssl_verify_client", ["on"]) in server
    assert ("ssl_client_certificate", ["/etc/nginx/pki/ca.pem"]) in server
    depth = dict(server).get("ssl_verify_depth", ["1"])
    assert int(depth[0]) >= 2, "root -> intermediate -> leaf needs depth 2"
    assert ("listen", ["8443", "ssl"]) in server


def test_nginx_forwards_the_certificate_in_the_header_users_reads():
    from s2s_auth.conf import DEFAULTS

    location = in_location("/api/v1/users/previews")
    assert location, "no exact location for the previews route"
    headers = {args[0].lower(): args[1] for name, args in location if name == "proxy_set_header"}
    header = DEFAULTS["NGINX_CERT_HEADER"].lower()
    # proxy_set_header replaces a client-sent header of the same name: the value is
    # nginx's own, never the client's.
    assert headers[header] == "$ssl_client_escaped_cert"
    assert headers.get("x-forwarded-client-cert") == '""', "clear the Envoy header too"
    settings = {name: args for name, args, _ in nginx_directives()}
    assert settings.get("underscores_in_headers", ["off"]) == ["off"]
    assert settings.get("ignore_invalid_headers", ["on"]) == ["on"]


def test_nginx_talks_tls_to_users_with_its_own_certificate():
    location = dict(in_location("/api/v1/users/previews"))
    assert location["proxy_pass"][0].startswith("https://")
    upstreams = {
        tuple(a)
        for n, a, blocks in nginx_directives()
        if n == "server" and any(b.startswith("upstream") for b in blocks)
    }
    assert ("users:8000",) in upstreams
    assert location["proxy_ssl_verify"] == ["on"]
    assert location["proxy_ssl_name"] == ["users"]
    assert location["proxy_ssl_trusted_certificate"] == ["/etc/nginx/pki/ca.pem"]
    assert location["proxy_ssl_certificate"] == ["/etc/nginx/pki/proxy.pem"]
    assert location["proxy_ssl_certificate_key"] == ["/etc/nginx/pki/proxy.key"]
    # users only accepts its own host names (ALLOWED_HOSTS of compose).
    hosts = {a[1] for n, a in in_location("/api/v1/users/previews") if n == "proxy_set_header"}
    assert "users" in hosts


def test_nginx_exposes_only_the_one_route():
    locations = {
        b for _, _, blocks in nginx_directives() for b in blocks if b.startswith("location")
    }
    assert "location = /api/v1/users/previews" in locations
    for n, _args, blocks in nginx_directives():
        if n == "proxy_pass":
            assert "location = /api/v1/users/previews" in blocks


def test_nginx_files_come_from_the_proxy_pki_volume(services):
    mount = next(t for t, s in volume_targets(services["proxy"]).items() if s == "pki-proxy")
    for name, args, _ in nginx_directives():
        if name.startswith(("ssl_", "proxy_ssl_")) and args and args[0].startswith("/"):
            assert args[0].startswith(mount + "/"), f"{name} {args[0]}"
            assert Path(args[0]).name in {*deploy_init.SHARED_FILES, "proxy.pem", "proxy.key"}


def test_routes_and_probe_paths_exist_in_the_projects(tmp_path):
    """The proxied route and the healthcheck paths resolve in the service's URLconf."""
    code = (
        "import django, sys; django.setup();"
        "from django.urls import resolve;"
        "[resolve(p) for p in sys.argv[1:]]"
    )
    for settings, paths in (
        ("users.settings", ["/api/v1/users/previews", "/api/v1/ping"]),
        ("ads.settings", ["/api/v1/ads/"]),
    ):
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": settings, "VAR_DIR": str(tmp_path)}
        out = subprocess.run(
            [sys.executable, "-c", code, *paths],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr


# --- scripts ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "script", ["entrypoint.sh", "bin/postgres-init.sh", "proxy/run.sh"], ids=str
)
def test_shell_scripts_parse_and_are_executable(script):
    path = DOCKER / script
    assert os.access(path, os.X_OK), f"{script} is not executable"
    subprocess.run(["sh", "-n", str(path)], check=True)


def run_entrypoint(args, env, tmp_path):
    clean = {k: v for k, v in os.environ.items() if not k.endswith("_URL")}
    return subprocess.run(
        [str(DOCKER / "entrypoint.sh"), *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=30,
    )


def test_entrypoint_reads_file_variables(tmp_path):
    secret = tmp_path / "cache_url"
    secret.write_text("redis://:pw@redis:6379/0\n")
    out = run_entrypoint(
        ["sh", "-c", 'echo "$CACHE_URL|${CACHE_URL_FILE:-unset}"'],
        {"CACHE_URL_FILE": str(secret)},
        tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "redis://:pw@redis:6379/0|unset"


def test_entrypoint_refuses_ambiguous_or_missing_input(tmp_path):
    secret = tmp_path / "url"
    secret.write_text("x")
    both = run_entrypoint(["true"], {"CACHE_URL": "a", "CACHE_URL_FILE": str(secret)}, tmp_path)
    assert both.returncode == 64
    missing = run_entrypoint(["true"], {"CACHE_URL_FILE": str(tmp_path / "nope")}, tmp_path)
    assert missing.returncode == 66
    serve = run_entrypoint([], {"WSGI_MODULE": ""}, tmp_path)
    assert serve.returncode == 64 and "WSGI_MODULE" in serve.stderr


def test_postgres_init_creates_a_database_per_service(services):
    text = (DOCKER / "bin" / "postgres-init.sh").read_text()
    assert re.search(r"^create users$", text, re.M) and re.search(r"^create ads$", text, re.M)
    assert "/run/secrets/${role}_db_password" in text
    assert {"users_db_password", "ads_db_password"} <= set(services["postgres"]["secrets"])


def test_make_secrets_is_consistent_and_idempotent(tmp_path):
    target = tmp_path / "secrets"
    make_secrets.write(target)
    values = {p.name: p.read_text().strip() for p in target.iterdir()}
    assert oct(target.stat().st_mode & 0o777) == "0o700"
    for service in ("users", "ads"):
        assert (
            f":{values[f'{service}_db_password']}@postgres:5432/{service}"
            in values[f"{service}_database_url"]
        )
    assert values["cache_url"].endswith("/0") and values["broker_url"].endswith("/1")
    assert values["redis_password"] in values["cache_url"]
    assert make_secrets.write(target) == []  # a second run changes nothing
    assert len(set(values.values())) == len(values)


# --- the PKI of the deployment ---------------------------------------------------------------


def test_ensure_pki_issues_the_compose_dns_names(tmp_path):
    ca = deploy_init.ensure_pki(tmp_path / "ca", "fleamarket.local")
    serials = {}
    for name in deploy_init.CERT_NAMES:
        cert = ca.load_certificate(name)
        serials[name] = cert.serial_number
        assert set(deploy_init.DNS_NAMES[name]) <= deploy_init.dns_names_of(cert)
        uris = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert f"spiffe://fleamarket.local/service/{name}" in uris.get_values_for_type(
            x509.UniformResourceIdentifier
        )
    for name in ("users", "ads", "proxy"):
        assert name in deploy_init.dns_names_of(ca.load_certificate(name))
    again = deploy_init.ensure_pki(tmp_path / "ca", "fleamarket.local")
    assert {n: again.load_certificate(n).serial_number for n in serials} == serials


def test_ensure_pki_reissues_a_dev_certificate_without_the_dns_names(tmp_path):
    from fleamarket.deployment import ensure_dev_pki

    ensure_dev_pki(tmp_path / "ca")  # what `python -m fleamarket pki` makes: localhost only
    ca = deploy_init.ensure_pki(tmp_path / "ca", "fleamarket.local")
    assert "users" in deploy_init.dns_names_of(ca.load_certificate("users"))


def test_distribute_gives_each_service_only_its_own_key(tmp_path):
    ca = deploy_init.ensure_pki(tmp_path / "ca", "fleamarket.local")
    out = tmp_path / "out"
    changed = deploy_init.distribute(ca, out)
    assert changed
    for name in deploy_init.CERT_NAMES:
        files = {p.name for p in (out / name).iterdir()}
        assert files == {*deploy_init.SHARED_FILES, f"{name}.pem", f"{name}.key"}
        assert (out / name / f"{name}.key").stat().st_mode & 0o077 == 0
    assert deploy_init.distribute(ca, out) == []  # unchanged files are not rewritten
    assert deploy_init.check(out) == []
    (out / "ads" / "ads.pem").unlink()
    assert deploy_init.check(out)


def test_check_reports_a_certificate_about_to_expire(tmp_path):
    ca = deploy_init.ensure_pki(tmp_path / "ca", "fleamarket.local")
    now = dt.datetime.now(dt.UTC)
    ca.renew(
        "users", not_before=now - dt.timedelta(hours=1), not_after=now + dt.timedelta(minutes=5)
    )
    out = tmp_path / "out"
    deploy_init.distribute(ca, out)
    assert any("users.pem" in p for p in deploy_init.check(out))
    deploy_init.ensure_pki(tmp_path / "ca", "fleamarket.local")  # renews it
    deploy_init.distribute(ca, out)
    assert deploy_init.check(out) == []


class _Ping(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self):
        self.send_response(self.status)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def https_server(tmp_path):
    ca = deploy_init.ensure_pki(tmp_path / "ca", "fleamarket.local", names=("users",))
    cert, key = ca.paths("users")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Ping)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, ca
    server.shutdown()
    server.server_close()


def test_healthcheck_probe_verifies_the_server(https_server, tmp_path, monkeypatch):
    server, ca = https_server
    port = server.server_address[1]
    url = f"https://localhost:{port}/api/v1/ping"
    assert healthcheck.probe(url, str(ca.ca_path), {200}, 3) is None
    monkeypatch.setattr(_Ping, "status", 503)
    assert "503" in healthcheck.probe(url, str(ca.ca_path), set(), 3)
    monkeypatch.setattr(_Ping, "status", 200)
    other = deploy_init.ensure_pki(tmp_path / "other", "fleamarket.local", names=("users",))
    assert healthcheck.probe(url, str(other.ca_path), set(), 3)  # wrong CA: unhealthy


def test_deployment_doc_covers_the_wiring():
    text = (ROOT / "docs" / "deployment.md").read_text()
    for needle in (
        "make_secrets.py",
        "S2S_TRUSTED_PROXIES",
        "ssl_client_escaped_cert",
        "X-SSL-Client-Cert",
        "TRUST_ANCHORS",
        "CRL_FILE",
        "SPIFFE",
        "compose.yaml",
    ):
        assert needle in text, needle


# --- monitoring: Prometheus scrapes with the prometheus principal; the Grafana dashboard --


PROMETHEUS_CONF = DOCKER / "prometheus" / "prometheus.yml"
DASHBOARD = DOCKER / "grafana" / "s2s-auth-dashboard.json"


def test_prometheus_scrapes_both_services_over_mtls_as_its_principal(services, compose):
    prometheus = services["prometheus"]
    assert "prometheus" in deploy_init.CERT_NAMES
    assert deploy_init.PRINCIPALS["prometheus"] == ("metrics:read",)
    assert "prometheus" in deploy_init.EVERY_SERVICE  # registered at users and ads
    mounts = volume_targets(prometheus)
    assert mounts == {"/pki": "pki-prometheus"}  # its own certificate only, never the CA's
    targets = {c["target"]: compose["configs"][c["source"]]["file"] for c in prometheus["configs"]}
    config_path = next(t for t, f in targets.items() if f == "./prometheus/prometheus.yml")
    assert f"--config.file={config_path}" in command_list(prometheus["command"])
    conf = yaml.safe_load(PROMETHEUS_CONF.read_text())
    (job,) = conf["scrape_configs"]
    assert job["scheme"] == "https" and job["metrics_path"] == "/metrics"
    tls = job["tls_config"]
    assert tls == {
        "ca_file": "/pki/ca.pem",
        "cert_file": "/pki/prometheus.pem",
        "key_file": "/pki/prometheus.key",
    }
    scraped = {
        t.partition(":")[0]: t.partition(":")[2] for t in job["static_configs"][0]["targets"]
    }
    assert set(scraped) == {"users", "ads"}
    for name, port in scraped.items():
        # The port the service binds inside the network, a DNS name its certificate has.
        assert env_of(services[name])["GUNICORN_BIND"].endswith(f":{port}")
        assert name in deploy_init.DNS_NAMES[name]
        assert set(services[name]["networks"]) & set(prometheus["networks"]), name
    # It runs as the app user (the key is 0600, owned by it), like the image.
    assert prometheus["user"].split(":")[0] == "10001"
    assert "--uid 10001" in DOCKERFILE.read_text()


def test_the_metrics_view_is_mounted_on_both_services():
    """What the scrape config's metrics_path reaches (tests/e2e scrapes it for real)."""
    from s2s_auth.metrics.views import METRICS_SCOPE

    assert METRICS_SCOPE == "metrics:read"
    for project in ("users", "ads"):
        text = (ROOT / project / "urls.py").read_text()
        assert 'path("metrics", MetricsView.as_view()' in text, project


def _metric_names() -> set[str]:
    """Every series name s2s_auth exposes (counters with _total, histograms' parts)."""
    from s2s_auth import metrics
    from s2s_auth.metrics.collectors import TrustMaterialCollector

    names = set()
    instruments = [metrics.REQUESTS, metrics.VERIFICATION, metrics.TOKENS, metrics.FETCHES]
    for instrument in [*instruments, metrics.LAST_FETCH, metrics.AUDIT_WRITE]:
        for family in instrument.describe():
            names.add(family.name)
            names |= {family.name + s for s in ("_total", "_bucket", "_count", "_sum")}
    names |= {family.name for family in TrustMaterialCollector().collect()}
    return names


def test_grafana_dashboard_queries_only_series_that_exist():
    import json

    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"]
    known = _metric_names()
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    assert exprs
    used = set()
    for expr in exprs:
        used |= {m for m in re.findall(r"\b(s2s_auth_[a-z_]+)\b", expr)}
    assert used <= known, used - known
    # Every kind of health the issue names has a panel.
    for series in (
        "s2s_auth_requests_total",
        "s2s_auth_verification_seconds_bucket",
        "s2s_auth_tokens_issued_total",
        "s2s_auth_fetch_last_success_timestamp_seconds",
        "s2s_auth_certificate_expiry_timestamp_seconds",
        "s2s_auth_crl_next_update_timestamp_seconds",
        "s2s_auth_audit_write_seconds_bucket",
    ):
        assert series in used, series
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_entrypoint_collects_static_files_before_serving():
    text = (DOCKER / "entrypoint.sh").read_text()
    assert text.index("collectstatic --noinput") < text.index("exec gunicorn")
