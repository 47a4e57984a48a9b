"""A Chromium or Google Chrome for the tests that render the HTML report, where Linux and
macOS keep them. `python3 tests/browser.py` prints the one found, or fails (exit code 1):
`just browser` asks it.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

NAMES = ("chromium", "chromium-browser", "google-chrome", "chrome")  # on the PATH
APPS = ("Applications/Chromium.app/Contents/MacOS/Chromium",  # where macOS installs them
        "Applications/Google Chrome.app/Contents/MacOS/Google Chrome")


def find_browser(path: str | None = None, root: str | Path = "/") -> str | None:
    """The first of NAMES on `path` (default: the PATH), else the first of APPS under
    `root`; None if there is none."""
    for name in NAMES:
        if found := shutil.which(name, path=path):
            return found
    apps = (Path(root, app) for app in APPS)
    return next((str(app) for app in apps if app.is_file() and os.access(app, os.X_OK)), None)


if __name__ == "__main__":
    found = find_browser()
    if found is None:
        sys.exit(1)
    print(found)
