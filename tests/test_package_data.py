"""Packaged files are read one way, and a missing one is an incomplete installation."""

from __future__ import annotations

from pathlib import Path

import pytest

import instructembed
from instructembed import package_data
from instructembed.errors import PackageDataError

SRC = Path(instructembed.__file__).resolve().parent


def test_the_declared_files_are_the_data_folder() -> None:
    """read_text accepts FILES only, and FILES is data/: a new data file is declared (and so shipped)."""
    on_disk = {p.name for p in (SRC / package_data.DATA_DIR).iterdir() if p.is_file()}
    assert set(package_data.FILES) == on_disk
    with pytest.raises(ValueError, match="not a packaged file"):
        package_data.read_text("../pyproject.toml")


def test_packaged_files_are_read_only_through_the_helper() -> None:
    """One road: a module opening package files another way would bypass the clear error."""
    for path in SRC.rglob("*.py"):
        if path.name == "package_data.py":
            continue
        text = path.read_text(encoding="utf-8")
        assert "resources.files(" not in text, f"{path.relative_to(SRC)}: read packaged files via read_text"


def test_a_missing_packaged_file_says_the_installation_is_incomplete(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(package_data, "FILES", (*package_data.FILES, "no-such-file.json"))
    with pytest.raises(PackageDataError) as caught:
        package_data.read_text("no-such-file.json")
    message = str(caught.value)
    assert "data/no-such-file.json" in message and "installation" in message and "incomplete" in message
    assert "reinstall" in message
    assert isinstance(caught.value, FileNotFoundError)  # the CLI reports it as one line


def test_features_that_read_packaged_files_raise_the_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """The calibration set (OpenVINO int8) and the instruction tables (eval), with their data dir gone."""
    from instructembed.eval.instructions import load_instructions
    from instructembed.export.openvino import default_calibration

    assert len(default_calibration()) > 10  # as installed here
    monkeypatch.setattr(package_data, "DATA_DIR", "gone")
    with pytest.raises(PackageDataError, match=r"gone/calibration\.jsonl is missing"):
        default_calibration()
    with pytest.raises(PackageDataError, match=r"gone/instructor-large\.json is missing"):
        load_instructions("instructor-large")


def test_source_commit_only_for_a_checkout(tmp_path: Path) -> None:
    """An installed copy inside someone's git repository (a project's .venv) must not claim its commit."""
    import subprocess

    repo = tmp_path / "project"
    repo.mkdir()
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.org"]
    subprocess.run([*git, "init", "-q"], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "x"], cwd=repo, check=True)
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True
    ).stdout.strip()
    checkout = repo / "src" / "instructembed"
    installed = repo / ".venv" / "lib" / "python3.11" / "site-packages" / "instructembed"
    for folder in (checkout, installed):
        folder.mkdir(parents=True)
    assert package_data.source_commit(checkout) == head
    assert package_data.source_commit(installed) is None
    assert package_data.source_commit(tmp_path) is None  # not in git at all
