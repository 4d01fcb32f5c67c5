"""Make the tests' Debian tools available (``make test`` calls this): chromium for the browser
tests, and ``xmlsec1``, the independent XML-DSig verifier of tests/test_cap_signature.py.

Playwright's own browser download is never used: the tests drive ``/usr/bin/chromium``. When a
tool is missing and we are root on Debian, install it with apt (as ``georisk db up`` does for
PostGIS); otherwise print the command and let the tests that need it skip with that reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
XMLSEC1 = Path("/usr/bin/xmlsec1")
#: tool → packages; chromium brings a CJK font, so Chinese names render in screenshots and
#: the diagram exports.
TOOLS = {
    CHROMIUM: ["chromium", "fonts-wqy-microhei"],
    XMLSEC1: ["xmlsec1"],
}


def _apt_install(packages: list[str]) -> bool:
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    command = ["apt-get", "install", "-y", *packages]
    if subprocess.run(command, env=env, check=False).returncode == 0:
        return True
    # A fresh image often has empty package lists: refresh once and retry.
    subprocess.run(["apt-get", "update"], env=env, check=False)
    return subprocess.run(command, env=env, check=False).returncode == 0


def main() -> int:
    missing = {tool: packages for tool, packages in TOOLS.items() if not tool.exists()}
    if not missing:
        return 0
    packages = [p for group in missing.values() for p in group]
    is_root = hasattr(os, "geteuid") and os.geteuid() == 0
    on_debian = Path("/etc/debian_version").exists() and shutil.which("apt-get") is not None
    if is_root and on_debian:
        print("missing: apt-get install -y " + " ".join(packages), flush=True)
        if _apt_install(packages) and all(tool.exists() for tool in missing):
            return 0
        print("could not install them; the tests that need them will be skipped", file=sys.stderr)
        return 0
    print(
        f"{', '.join(t.name for t in missing)} missing; the tests that need them will be "
        "skipped. Install with:\n  sudo apt-get install -y " + " ".join(packages),
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
