"""Make Debian's chromium available to the browser tests (``make test`` calls this).

Playwright's own browser download is never used: the tests drive ``/usr/bin/chromium``. When it
is missing and we are root on Debian, install it with apt (as ``georisk db up`` does for
PostGIS); otherwise print the command and let the browser tests skip with that reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
#: A CJK font too, so Chinese names render in screenshots and the diagram exports.
COMMAND = ["apt-get", "install", "-y", "chromium", "fonts-wqy-microhei"]


def _apt_install() -> bool:
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    if subprocess.run(COMMAND, env=env, check=False).returncode == 0:
        return True
    # A fresh image often has empty package lists: refresh once and retry.
    subprocess.run(["apt-get", "update"], env=env, check=False)
    return subprocess.run(COMMAND, env=env, check=False).returncode == 0


def main() -> int:
    if CHROMIUM.exists():
        return 0
    is_root = hasattr(os, "geteuid") and os.geteuid() == 0
    on_debian = Path("/etc/debian_version").exists() and shutil.which("apt-get") is not None
    if is_root and on_debian:
        print("chromium is missing: " + " ".join(COMMAND), flush=True)
        if _apt_install() and CHROMIUM.exists():
            return 0
        print("could not install chromium; the browser tests will be skipped", file=sys.stderr)
        return 0
    print(
        "chromium is missing; the browser tests will be skipped. Install it with:\n"
        "  sudo " + " ".join(COMMAND),
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
