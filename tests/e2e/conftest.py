"""Fixtures for the e2e bed (see e2e_bed.py). Skipped, with the reason,
when not root or without `ip netns`."""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e_bed  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="session")
def bed(tmp_path_factory):
    reason = e2e_bed.usable()
    if reason:
        pytest.skip(reason)
    b = e2e_bed.Bed(str(tmp_path_factory.mktemp("e2e")))
    try:
        b.start()
        yield b
    finally:
        b.stop()


@pytest.fixture(scope="session")
def unit_runner():
    for name in ("unit-tests-san", "unit-tests"):
        path = os.path.join(ROOT, "build", name)
        if os.access(path, os.X_OK):
            return path
    pytest.skip("build/unit-tests-san not built (make SANITIZE=1 build/unit-tests-san)")
