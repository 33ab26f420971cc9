"""Fixtures and hooks of the mount suites live in scsmount.py."""
from scsmount import *  # noqa: F401,F403
from scsmount import _no_leftover_mounts, _watchdog, pytest_configure  # noqa: F401
