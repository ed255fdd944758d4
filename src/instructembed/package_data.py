"""The installed package: its data files (`data/`), read one way; its version; the commit of its checkout.

Every run-time read of a packaged file goes through `read_text`, so a file that an installation lacks
(a wheel built without it, a partly deleted site-packages) is reported as what it is -- an incomplete
installation, naming the file -- instead of a bare `FileNotFoundError` from deep inside a feature.
`scripts/release_check.py` checks that the built wheel holds every such file.
"""

from __future__ import annotations

import subprocess
from importlib import resources
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from instructembed.errors import PackageDataError

PACKAGE = "instructembed"
#: The folder of the package that holds its data files (shipped by pyproject's package-data).
DATA_DIR = "data"
#: Every file of `data/`, and the only names `read_text` accepts (a test keeps the two equal).
FILES = (
    "calibration.jsonl",
    "instructor-base.json",
    "instructor-large.json",
    "instructor-xl.json",
    "local-task-instructions.json",
    "paper-task-instructions.json",
    "reddit-clustering-sets.json",
    "stackexchange-clustering-sets.json",
)


def read_text(name: str) -> str:
    """The UTF-8 text of `data/<name>` as installed with the package."""
    if name not in FILES:
        raise ValueError(
            f"{name!r} is not a packaged file; known: {', '.join(FILES)} (add new ones to FILES)"
        )
    resource = resources.files(PACKAGE).joinpath(DATA_DIR, name)
    try:
        return resource.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        raise PackageDataError(
            f"instructembed's packaged file {DATA_DIR}/{name} is missing (looked for {resource}): "
            f"this installation of instructembed {package_version()} is incomplete; reinstall it "
            "(pip install --force-reinstall instructembed), and if you built the wheel yourself, "
            "check that pyproject.toml's package-data ships the file"
        ) from None


#: The playground page's files, served by `instructembed serve` (server/playground_routes.py).
PLAYGROUND_FILES = ("index.html", "app.js", "style.css", "examples.json")


def read_playground(name: str) -> bytes:
    """The bytes of `server/playground/<name>` as installed with the package."""
    if name not in PLAYGROUND_FILES:
        raise ValueError(f"{name!r} is not a playground file; known: {', '.join(PLAYGROUND_FILES)}")
    resource = resources.files(PACKAGE).joinpath("server", "playground", name)
    try:
        return resource.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        raise PackageDataError(
            f"instructembed's packaged file server/playground/{name} is missing (looked for {resource}): "
            f"this installation of instructembed {package_version()} is incomplete; reinstall it "
            "(pip install --force-reinstall instructembed)"
        ) from None


def package_version() -> str:
    """The installed distribution's version ("0+unknown" when the source runs without being installed)."""
    try:
        return version(PACKAGE)
    except PackageNotFoundError:
        return "0+unknown"


def source_commit(package_dir: Path | None = None) -> str | None:
    """`git rev-parse HEAD` of the checkout this package runs from; None for an installed copy.

    Only a package at `<repository>/src/instructembed` is a checkout: a wheel installed into a venv
    that sits inside some other git repository (a user's project) must not record that commit.
    """
    here = (package_dir or Path(__file__).parent).resolve()
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--show-toplevel", "HEAD"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = out.stdout.splitlines()
    if out.returncode != 0 or len(lines) != 2:
        return None
    top, commit = lines
    return commit.strip() or None if Path(top).resolve() / "src" / PACKAGE == here else None
