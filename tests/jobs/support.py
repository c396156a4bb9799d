"""Looking into a live deployment's databases from a test: through ``manage.py shell``,
the way an operator would, since each service has its own database."""

from __future__ import annotations

import json

from fleamarket.deployment import Deployment

MARK = "JSON:"

USERS_STATE = """
import json
from users.notifications.models import Notification
from s2s_auth.models import AuditRecord
out = {
    "notifications": list(Notification.objects.order_by("id").values(
        "id", "user_id", "kind", "ad_id", "sender", "idempotency_key")),
    "audit": list(AuditRecord.objects.filter(path__contains="/notifications").order_by("id").values(
        "mechanism", "principal", "end_user", "outcome", "reason", "method", "path", "claims")),
}
print("JSON:" + json.dumps(out, default=str))
"""


def shell_json(deployment: Deployment, service: str, code: str):
    """Run ``code`` in ``manage.py shell`` of ``service``; it prints ``JSON:<document>``."""
    output = deployment.manage(service, "shell", "-c", code).stdout
    for line in output.splitlines():
        if line.startswith(MARK):
            return json.loads(line[len(MARK) :])
    raise AssertionError(f"no {MARK} line in:\n{output}")


def users_state(deployment: Deployment) -> dict:
    """UserService's notifications, and its audit records of calls to the endpoint."""
    return shell_json(deployment, "users", USERS_STATE)


def ads_shell(deployment: Deployment, code: str):
    """Run ``code`` (which sets ``out``) against AdService's database; return ``out``."""
    script = (
        "import json\n"
        "from django.utils import timezone\n"
        "from datetime import timedelta\n"
        "from ads.listings.models import Ad\n"
        f"{code}\n"
        'print("JSON:" + json.dumps(out, default=str))\n'
    )
    return shell_json(deployment, "ads", script)


def issued_tokens(deployment: Deployment, client: str = "worker") -> int:
    """How many tokens the identity service issued to ``client`` (from its log)."""
    log = deployment.log_path("users").read_text(errors="replace")
    return log.count(f"issued token client={client} ")
