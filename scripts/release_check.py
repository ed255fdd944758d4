"""The release check: what `pip install 'instructembed[...]'` gives a user works as the checkout does.

    python scripts/release_check.py [--torch-spec torch==2.13.0] [--data-dir ../shared/data] [--keep]

`make release-check` runs it (and `make test` calls that, so CI does). Every step works in a fresh
folder under $TMPDIR, outside the checkout:

1. copy the files git sees (tracked, plus untracked ones not ignored) into a clean tree, so stale
   build/ or *.egg-info in the checkout cannot leak into the artifacts;
2. build the sdist, and the wheel *from the sdist*, with `python -m build` (isolated, as pip would);
3. `twine check --strict` both;
4. check that the wheel holds every file of `src/instructembed` (every non-Python file the code opens:
   `data/*`, `py.typed`; and every module, so a sub-package without `__init__.py` is caught too);
5. compute reference vectors with the checkout's code;
6. create a venv, install torch as the Makefile does (`--torch-spec`, the CPU build from local disk),
   then the wheel with every extra a smoke test needs (pip's cache is reused);
7. run each smoke test of `release_smoke.py` in its own process with that venv's python, from a
   folder outside the checkout, with an empty HOME (so an empty ~/.cache/instructembed) and an
   empty export cache.

Exit status 0 only when every step passed; the summary names what failed. Timings are printed per
step. Only the standard library is used here: this runs before anything is installed anywhere.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PACKAGE = "instructembed"
sys.path.insert(0, str(HERE))
import release_smoke  # noqa: E402  (stdlib-only at import; the smoke tests' registry)

#: What the smoke tests use as a user would (the client side), not a dependency of instructembed.
CLIENT_PACKAGES = ("openai>=1.0",)
#: Never copied into the build tree, even when git is not there to say what is ignored.
_JUNK = {".git", ".venv", "build", "dist", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"}


class ReleaseCheckError(Exception):
    """A step of the release check failed; the message says which and why."""


# -- what must be in the wheel ------------------------------------------------------------------------


def package_files(package_dir: Path) -> set[str]:
    """Every file of the package source as its wheel path (`instructembed/data/calibration.jsonl`).

    Byte code and caches are not source. Everything else is: modules, `py.typed`, and every data file
    the code opens (they live under `data/` and are read through `instructembed.package_data`).
    """
    root = package_dir.parent
    found = set()
    for path in package_dir.rglob("*"):
        if not path.is_file() or "__pycache__" in path.parts or path.suffix in (".pyc", ".pyo"):
            continue
        found.add(path.relative_to(root).as_posix())
    return found


def missing_from_wheel(wheel: Path, package_dir: Path) -> list[str]:
    """The package's source files that the wheel lacks, sorted (empty when it holds them all)."""
    with zipfile.ZipFile(wheel) as archive:
        shipped = set(archive.namelist())
    return sorted(package_files(package_dir) - shipped)


# -- steps --------------------------------------------------------------------------------------------


def source_files(root: Path) -> list[Path]:
    """The files a clean clone plus the uncommitted work holds: git's tracked and untracked-not-ignored."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=root,
            capture_output=True,
            check=True,
        ).stdout.decode()
        names = [n for n in listed.split("\0") if n]
    except (OSError, subprocess.CalledProcessError):  # not a git checkout (an unpacked sdist, say)
        names = [
            p.relative_to(root).as_posix()
            for p in root.rglob("*")
            if p.is_file() and not _JUNK & set(p.relative_to(root).parts) and p.suffix != ".pyc"
        ]
    return [root / n for n in names if (root / n).is_file()]  # a deleted, uncommitted file is not there


def copy_tree(root: Path, target: Path) -> None:
    for path in source_files(root):
        dest = target / path.relative_to(root)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, dest)


def run(cmd: Sequence[object], *, what: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    """Run a command; on failure raise with its output's tail and the command to rerun it."""
    args = [str(c) for c in cmd]
    done = subprocess.run(args, capture_output=True, text=True, **kwargs)  # type: ignore[call-overload]
    if done.returncode != 0:
        tail = (done.stdout[-3000:] + "\n" + done.stderr[-5000:]).strip()
        raise ReleaseCheckError(f"{what} failed (exit {done.returncode}): {' '.join(args)}\n{tail}")
    return done  # type: ignore[no-any-return]


def build(tree: Path, dist: Path) -> tuple[Path, Path]:
    """sdist, then the wheel from that sdist (what `python -m build` does without flags)."""
    run([sys.executable, "-m", "build", "--outdir", dist, tree], what="python -m build")
    sdists, wheels = sorted(dist.glob("*.tar.gz")), sorted(dist.glob("*.whl"))
    if len(sdists) != 1 or len(wheels) != 1:
        raise ReleaseCheckError(f"expected one sdist and one wheel in {dist}, found {sdists + wheels}")
    return sdists[0], wheels[0]


def check_wheel(wheel: Path, package_dir: Path) -> None:
    missing = missing_from_wheel(wheel, package_dir)
    if missing:
        raise ReleaseCheckError(
            f"the wheel {wheel.name} lacks {len(missing)} file(s) of src/{PACKAGE} that an installed "
            f"package needs: {', '.join(missing)}. Ship them: [tool.setuptools.package-data] in "
            "pyproject.toml (data files), or an __init__.py (a sub-package)"
        )


def clean_env(home: Path | None = None) -> dict[str, str]:
    """The environment for the fresh venv: nothing from the checkout's venv or PYTHONPATH leaks in."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env.update(PYTHONNOUSERSITE="1", HF_HUB_OFFLINE="1", PYTHONDONTWRITEBYTECODE="1")
    if home is not None:  # an empty HOME: empty ~/.cache/instructembed and Hugging Face cache
        env.update(HOME=str(home), XDG_CACHE_HOME=str(home / ".cache"), MPLCONFIGDIR=str(home / ".mpl"))
    return env


def make_venv(venv: Path, torch_spec: str, wheel: Path, extras: Iterable[str]) -> Path:
    python = venv / "bin" / "python"
    run([sys.executable, "-m", "venv", venv], what="creating the venv")
    pip = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    # Torch first, as the Makefile does: the CPU build on local disk, so pip never pulls a CUDA build.
    run([*pip, torch_spec], what=f"pip install {torch_spec}", env=clean_env())
    spec = f"{wheel}[{','.join(sorted(set(extras)))}]" if extras else str(wheel)
    run([*pip, spec, *CLIENT_PACKAGES], what=f"pip install {spec}", env=clean_env())
    return python


def reference_vectors(out: Path) -> None:
    """The checkout's own vectors for release_smoke.ITEMS: what the installed package must reproduce."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
    env["HF_HUB_OFFLINE"] = "1"
    run(
        [sys.executable, HERE / "release_smoke.py", "reference", "--out", out],
        what="the checkout's reference vectors",
        env=env,
    )


def run_smoke(python: Path, name: str, work: Path, reference: Path, data_dir: Path | None) -> str:
    folder = work / f"smoke-{name}"
    home = folder / "home"
    home.mkdir(parents=True)
    script = work / "release_smoke.py"  # a copy: nothing from the checkout is on the smoke's sys.path
    cmd: list[object] = [python, script, name, "--reference", reference, "--cache", folder / "cache"]
    cmd += ["--forbid", ROOT, *(["--data-dir", data_dir] if data_dir is not None else [])]
    done = run(cmd, what=f"smoke test '{name}'", cwd=folder, env=clean_env(home), timeout=900)
    return done.stdout.strip()


# -- driver -------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--torch-spec", default="torch==2.13.0", help="what the Makefile installs first")
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--only", help="comma-separated smoke tests (default: all)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (always kept on failure)")
    args = parser.parse_args(argv)
    only = args.only.split(",") if args.only else list(release_smoke.SMOKES)
    unknown = set(only) - set(release_smoke.SMOKES)
    if unknown:
        parser.error(f"unknown smoke test(s) {sorted(unknown)}; known: {', '.join(release_smoke.SMOKES)}")
    data_dir: Path | None = args.data_dir.resolve()
    if "eval" in only and not args.data_dir.is_dir():
        if os.environ.get("CI") == "true":
            parser.error(f"no data directory at {args.data_dir}; CI must have ../shared beside the checkout")
        print(f"note: no data directory at {args.data_dir}: skipping the eval smoke test", file=sys.stderr)
        only.remove("eval")
        data_dir = None

    work = Path(tempfile.mkdtemp(prefix="instructembed-release-"))
    timings: list[tuple[str, float]] = []

    def step(name: str) -> _Step:
        return _Step(name, timings)

    print(f"release check in {work}", flush=True)
    try:
        tree = work / "tree"
        with step("copy the source tree"):
            copy_tree(ROOT, tree)
        with step("build sdist + wheel"):
            sdist, wheel = build(tree, work / "dist")
        with step("twine check"):
            run([sys.executable, "-m", "twine", "check", "--strict", sdist, wheel], what="twine check")
        with step("wheel holds every package file"):
            check_wheel(wheel, tree / "src" / PACKAGE)
        with step("reference vectors (checkout)"):
            reference = work / "reference.npy"
            reference_vectors(reference)
        extras = [e for name in only for e in release_smoke.SMOKES[name].extras]
        with step(f"venv + {args.torch_spec} + wheel[{','.join(sorted(set(extras)))}]"):
            python = make_venv(work / "venv", args.torch_spec, wheel, extras)
        shutil.copy2(HERE / "release_smoke.py", work / "release_smoke.py")
    except (ReleaseCheckError, subprocess.TimeoutExpired) as exc:
        print(f"\nRELEASE CHECK FAILED: {exc}\n(work folder kept: {work})", file=sys.stderr)
        return 1
    failed = []
    for name in only:  # every smoke test runs, so one report names all that fail
        try:
            with step(f"smoke {name}: {release_smoke.SMOKES[name].what}"):
                out = run_smoke(python, name, work, reference, data_dir)
            print(out, flush=True)
        except (ReleaseCheckError, subprocess.TimeoutExpired) as exc:
            print(f"SMOKE TEST FAILED: {exc}", file=sys.stderr, flush=True)
            failed.append(name)
    total = sum(seconds for _, seconds in timings)
    print(f"release check: {total:.0f} s in all; work folder {work}")
    if failed:
        print(f"RELEASE CHECK FAILED: smoke test(s) {', '.join(failed)} (work folder kept)", file=sys.stderr)
    elif not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    print(f"smoke: {len(only) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


class _Step:
    """Prints a step's name and, when it ends, its time (or that it failed)."""

    def __init__(self, name: str, timings: list[tuple[str, float]]) -> None:
        self.name, self.timings = name, timings

    def __enter__(self) -> None:
        self.start = time.monotonic()
        print(f"-- {self.name} ...", flush=True)

    def __exit__(self, kind: object, *_: object) -> None:
        seconds = time.monotonic() - self.start
        self.timings.append((self.name, seconds))
        print(f"   {'ok' if kind is None else 'FAILED'} ({seconds:.1f} s)", flush=True)


if __name__ == "__main__":
    sys.exit(main())
