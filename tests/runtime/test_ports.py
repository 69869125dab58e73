"""Ports handed to test processes must not collide with each other or with outgoing connections."""

import socket

from erumlab.testing import processes
from erumlab.testing.processes import _ephemeral_range, free_port


def test_free_ports_are_distinct_bindable_and_outside_the_ephemeral_range():
    ports = [free_port() for _ in range(300)]
    assert len(set(ports)) == len(ports)
    low, _ = _ephemeral_range()
    assert all(port < low for port in ports)
    for port in ports[:20]:
        with socket.socket() as server:
            server.bind(("127.0.0.1", port))


def test_a_port_someone_listens_on_is_skipped(monkeypatch):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            other = probe.getsockname()[1]
        draws = iter([taken, taken, other])
        monkeypatch.setattr(processes.random, "randint", lambda low, high: next(draws))
        assert free_port() == other
