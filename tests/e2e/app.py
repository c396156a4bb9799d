"""The flea-market app as its clients meet it, against a live deployment: people who
log in at users and call ads with the token they got, like a browser or a phone app."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import requests

from fleamarket.deployment import Deployment
from tests.jobs.support import shell_json

LAMP = {
    "title": "Desk lamp",
    "description": "Brass, works.",
    "price": "12.50",
    "currency": "EUR",
    "kind": "sell",
    "latitude": 52.52,
    "longitude": 13.405,
}


def give_password(deployment: Deployment, username: str) -> str:
    """Set a fresh password for a seeded person at users (as an operator would)."""
    password = secrets.token_urlsafe(16)
    shell_json(
        deployment,
        "users",
        "from django.contrib.auth import get_user_model\n"
        f"u = get_user_model().objects.get(username={username!r})\n"
        f"u.set_password({password!r}); u.save()\n"
        'print("JSON:" + str(u.pk))',
    )
    return password


@dataclass
class Person:
    """A signed-in end user: ``id`` at users, and the access token users gave them."""

    deployment: Deployment
    username: str
    id: int
    token: str

    def session(self, *, bearer: bool = True, token: str | None = None) -> requests.Session:
        """A session trusting the dev CA; with this person's token, or ``token``."""
        session = requests.Session()
        session.trust_env = False
        session.verify = str(self.deployment.pki_dir / "ca.pem")
        if bearer:
            session.headers["Authorization"] = f"Bearer {token or self.token}"
        return session

    def ads(self, method: str, path: str, **kwargs) -> requests.Response:
        kwargs.setdefault("timeout", 30)
        return self.session().request(method, self.deployment.url("ads") + path, **kwargs)


def anonymous(deployment: Deployment, method: str, path: str, **kwargs) -> requests.Response:
    session = requests.Session()
    session.trust_env = False
    session.verify = str(deployment.pki_dir / "ca.pem")
    kwargs.setdefault("timeout", 30)
    return session.request(method, deployment.url("ads") + path, **kwargs)


def log_in(deployment: Deployment, username: str, password: str) -> Person:
    """``POST /api/v1/auth/login`` at users: the person with their access token."""
    session = requests.Session()
    session.trust_env = False
    session.verify = str(deployment.pki_dir / "ca.pem")
    response = session.post(
        deployment.url("users") + "/api/v1/auth/login",
        json={"username": username, "password": password},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    who = shell_json(
        deployment,
        "users",
        "from django.contrib.auth import get_user_model\n"
        f'print("JSON:" + str(get_user_model().objects.get(username={username!r}).pk))',
    )
    return Person(deployment, username, int(who), token)
