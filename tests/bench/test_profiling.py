"""Grouping a profile: a real cProfile dump of code that verifies a JWT, looks up a
principal-like row and serves "requests", split into the report's groups."""

import cProfile
import logging
import time

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

from bench.profiling import OTHER, summarize


def test_the_groups_and_the_request_count_come_from_the_dump(tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    token = jwt.encode({"sub": "bench", "exp": int(time.time()) + 60}, key, algorithm="ES256")
    logger = logging.getLogger("bench.test")

    def handle_request():  # the name the summary counts requests by
        jwt.decode(token, key.public_key(), algorithms=["ES256"])
        logger.info("served")
        sum(i * i for i in range(2000))  # "the rest"

    profiler = cProfile.Profile(time.thread_time)
    profiler.enable()
    for _ in range(7):
        handle_request()
    profiler.disable()
    profiler.dump_stats(tmp_path / "worker-1.prof")

    summary = summarize(tmp_path)
    assert summary["requests"] == 7
    groups = {row["group"]: row for row in summary["groups"]}
    assert groups["JWT / signature verify"]["ms_per_request"] > 0
    assert groups["logging"]["ms_per_request"] > 0
    assert groups["audit write"]["ms_per_request"] == 0
    assert groups[OTHER]["ms_per_request"] > 0
    assert abs(sum(row["share"] for row in summary["groups"]) - 1) < 1e-6
    assert summary["top"] and all(" at 0x" not in row["function"] for row in summary["top"])
