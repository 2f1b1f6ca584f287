"""Fixtures that run the real tegami binary on free ports in a temp dir."""
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from tegami_server import TegamiServer, BINARY  # noqa: E402


@pytest.fixture
def server(tmp_path):
    """A running server with two accounts (alice, bob @example.test)."""
    srv = TegamiServer(tmp_path)
    srv.add_account("alice@example.test", "alicepw")
    srv.add_account("bob@example.test", "bobpw")
    try:
        srv.start()
        yield srv
    finally:
        srv.stop_and_check()


@pytest.fixture
def make_server(tmp_path):
    """Factory: make_server(env={...}) -> started TegamiServer."""
    made = []

    def make(env=None, accounts=(("alice@example.test", "alicepw"),), start=True):
        d = tmp_path / f"srv{len(made)}"
        d.mkdir()
        srv = TegamiServer(d, env=env)
        made.append(srv)
        for a, p in accounts:
            srv.add_account(a, p)
        if start:
            srv.start()
        return srv
    yield make
    errors = []
    for srv in made:
        try:
            srv.stop_and_check()
        except AssertionError as e:
            errors.append(e)
    if errors:
        raise errors[0]
