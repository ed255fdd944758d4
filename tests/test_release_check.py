"""scripts/release_check.py's fast parts: which files the wheel must hold, and the smoke registry.

The slow part (build, fresh venv, smoke tests) runs as `make release-check`, which `make test` calls.
"""

from __future__ import annotations

import importlib.util
import sys
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def release_check() -> ModuleType:
    spec = importlib.util.spec_from_file_location("release_check", ROOT / "scripts" / "release_check.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["release_check"] = module
    spec.loader.exec_module(module)
    return module


def _package(root: Path) -> Path:
    package = root / "src" / "pkg"
    for name, text in {
        "__init__.py": "",
        "py.typed": "",
        "data/table.json": "{}",
        "data/calibration.jsonl": "{}\n",
        "sub/__init__.py": "",
        "sub/mod.py": "x = 1\n",
        "__pycache__/mod.cpython-311.pyc": "",
        "sub/__pycache__/mod.cpython-311.pyc": "",
    }.items():
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        (package / name).write_text(text)
    return package


def _wheel(path: Path, names: list[str]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name in names:
            archive.writestr(name, "")
        archive.writestr("pkg-0.1.0.dist-info/METADATA", "")
    return path


def test_package_files_are_every_source_file_but_byte_code(release_check: ModuleType, tmp_path: Path) -> None:
    files = release_check.package_files(_package(tmp_path))
    assert files == {
        "pkg/__init__.py",
        "pkg/py.typed",
        "pkg/data/table.json",
        "pkg/data/calibration.jsonl",
        "pkg/sub/__init__.py",
        "pkg/sub/mod.py",
    }


def test_a_wheel_without_a_data_file_fails_the_check(release_check: ModuleType, tmp_path: Path) -> None:
    package = _package(tmp_path)
    complete = sorted(release_check.package_files(package))
    full = _wheel(tmp_path / "full.whl", complete)
    assert release_check.missing_from_wheel(full, package) == []
    release_check.check_wheel(full, package)

    # The bug this check exists for: package-data shipped data/*.json only, not the .jsonl.
    partial = _wheel(tmp_path / "partial.whl", [n for n in complete if not n.endswith(".jsonl")])
    assert release_check.missing_from_wheel(partial, package) == ["pkg/data/calibration.jsonl"]
    with pytest.raises(release_check.ReleaseCheckError, match=r"lacks 1 file.*pkg/data/calibration\.jsonl"):
        release_check.check_wheel(partial, package)


def test_the_real_package_data_is_expected_in_the_wheel(release_check: ModuleType) -> None:
    files = release_check.package_files(ROOT / "src" / "instructembed")
    for name in ("py.typed", "data/calibration.jsonl", "data/instructor-large.json"):
        assert f"instructembed/{name}" in files


def test_every_extra_has_a_smoke_test(release_check: ModuleType) -> None:
    """The release check installs the extras its smoke tests name; each local extra is covered once."""
    import tomllib

    declared = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"])
    smokes = release_check.release_smoke.SMOKES
    covered = {extra for smoke in smokes.values() for extra in smoke.extras}
    # dev is the developers' tool set; mteb runs MTEB's own tasks, which download their data from the hub.
    assert covered == declared - {"dev", "mteb"}
    assert "core" in smokes and smokes["core"].extras == ()
    assert set(release_check.release_smoke.EXTRA_MODULES) == covered


def test_installed_by_follows_the_extras(release_check: ModuleType) -> None:
    """Which distributions an extra brings, read from the installed metadata (here: the dev venv)."""
    smoke = release_check.release_smoke
    core = smoke.installed_by(())
    assert {"instructembed", "torch", "transformers", "tokenizers"} <= core
    assert "onnxruntime" not in core and "fastapi" not in core
    assert {"onnxruntime", "onnx"} <= smoke.installed_by(("onnx",)) - core
    assert {"fastapi", "uvicorn"} <= smoke.installed_by(("server",)) - core


def test_blocked_extras_are_unimportable_in_child_processes(
    release_check: ModuleType, tmp_path: Path
) -> None:
    """The core smoke test runs as if no extra were installed, in the commands it starts too."""
    import subprocess

    script = (
        "import subprocess, sys\n"
        "from pathlib import Path\n"
        "import release_smoke\n"
        f"blocked = release_smoke.block_other_extras(('onnx',), Path({str(tmp_path)!r}))\n"
        "assert 'onnxruntime' not in blocked and 'fastapi' in blocked, blocked\n"
        "child = 'import onnxruntime, numpy\\ntry:\\n import fastapi\\nexcept ImportError:\\n print(\"blocked\")'\n"
        "print(subprocess.run([sys.executable, '-c', child], capture_output=True, text=True).stdout)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=ROOT / "scripts",
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "blocked"
