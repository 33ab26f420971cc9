"""Fixtures and hooks of the mount suites live in scsmount.py."""
from scsmount import *  # noqa: F401,F403
from scsmount import (_no_leftover_mounts, _session_drive, _watchdog,  # noqa: F401
                      pytest_collection_modifyitems, pytest_configure)
