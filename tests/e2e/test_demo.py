"""The demo itself, as `make demo CI=1` runs it: every step must say ok."""

import os
import re
import subprocess
import sys
from pathlib import Path

from fleamarket.processes import free_port

ROOT = Path(__file__).resolve().parents[2]


def test_demo_walk_passes_end_to_end(tmp_path):
    env = {
        **{k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"},
        "VAR_DIR": str(tmp_path),
        "FLEAMARKET_USERS_PORT": str(free_port()),
        "FLEAMARKET_ADS_PORT": str(free_port()),
    }
    if env.get("DATABASE_URL", "").startswith("postgres"):
        # Each service gets its own fresh database on the same server.
        base = env.pop("DATABASE_URL").rsplit("/", 1)[0]
        for service in ("users", "ads"):
            name = f"demo_{service}_{os.getpid()}"
            env[f"{service.upper()}_DATABASE_URL"] = f"{base}/{name}"
            _recreate_database(base, name)
    result = subprocess.run(
        [sys.executable, "-m", "fleamarket", "demo", "--ci"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    steps = re.findall(r"^\[(\d+)/(\d+)\] (ok|FAIL) ", result.stdout, re.M)
    assert steps, output
    total = int(steps[0][1])
    assert [int(n) for n, _, _ in steps] == list(range(1, total + 1))
    assert all(state == "ok" for _, _, state in steps), output
    assert "every step behaved as expected" in result.stdout


def _recreate_database(base: str, name: str, *, create: bool = True) -> None:
    import psycopg

    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if create:
            conn.execute(f'CREATE DATABASE "{name}"')
