"""The ports the test suites and the bench start servers on: free, and never one the
kernel may hand an outgoing connection in the meantime (a collision seen under load)."""

from __future__ import annotations

import socket

from fleamarket.processes import _ephemeral_ports, free_port


def test_free_port_is_bindable_and_outside_the_ephemeral_range():
    ephemeral = _ephemeral_ports()
    ports = {free_port() for _ in range(50)}
    assert not any(port in ephemeral for port in ports)
    assert len(ports) > 40  # random, not one port handed to every caller
    for port in list(ports)[:5]:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))
