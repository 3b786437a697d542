"""``aurora-qb install-browser``: Debian's chromium for the headless UI test."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess


def cmd_install_browser(args: argparse.Namespace) -> int:
    """Debian's chromium (the test tools' own browser downloads fail on a machine without internet)."""
    if shutil.which("chromium"):
        print(f"chromium already installed: {shutil.which('chromium')}")
        return 0
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run([*sudo, "apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run([*sudo, "apt-get", "install", "-y", "-qq", "chromium"], check=True, env=env)
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("install-browser", help="install Debian's chromium for the UI test (apt-get)",
                       description=cmd_install_browser.__doc__)
    p.set_defaults(func=cmd_install_browser)
