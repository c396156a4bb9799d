"""What the wheel holds and declares: the library only, its README, its Django range."""

from __future__ import annotations

import email
import zipfile

from tests.package.conftest import REPO


def read(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        return names, email.message_from_bytes(archive.read(metadata))


def test_the_wheel_holds_the_library_only(wheel):
    names, _ = read(wheel)
    packages = {name.split("/")[0] for name in names}
    assert {p for p in packages if not p.endswith(".dist-info")} == {"s2s_auth"}
    for shipped in [
        "s2s_auth/tls/gunicorn_conf.py",
        "s2s_auth/tls/server.py",
        "s2s_auth/migrations/__init__.py",
        "s2s_auth/management/commands/runserver_tls.py",
        "s2s_auth/issuer/urls.py",
    ]:
        assert shipped in names, shipped
    assert not [n for n in names if "__pycache__" in n or n.endswith((".pyc", ".key", ".pem"))]


def test_metadata_declares_django_the_extra_and_the_readme(wheel):
    _, meta = read(wheel)
    requires = meta.get_all("Requires-Dist")
    django = next(r for r in requires if r.lower().startswith("django") and "rest" not in r)
    assert set(django.split(" ")[0][len("django") :].split(",")) == {">=5.2", "<6.2"}
    assert "gunicorn" in meta.get_all("Provides-Extra")
    assert any(r.startswith("gunicorn") and 'extra == "gunicorn"' in r for r in requires)
    classifiers = meta.get_all("Classifier")
    assert {"Framework :: Django :: 5.2", "Framework :: Django :: 6.1"} <= set(classifiers)
    assert meta["Description-Content-Type"] == "text/markdown"
    readme = (REPO / "s2s_auth" / "README.md").read_text()
    assert meta.get_payload().strip() == readme.strip()
    assert "fleamarket" not in readme
