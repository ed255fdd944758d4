"""Each framework is an optional extra: imported only in its own module, and a clear "install the
[x] extra" error where it is missing (what a wheel installed without that extra shows)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from test_import_graph import PACKAGE, imported_names

FRAMEWORKS = {  # top-level package -> the one module allowed to import it, and the extra
    "langchain_core": ("instructembed.integrations.langchain", "langchain"),
    "llama_index": ("instructembed.integrations.llamaindex", "llamaindex"),
    "chromadb": ("instructembed.integrations.chroma", "chroma"),
    "haystack": ("instructembed.integrations.haystack", "haystack"),
}


def test_each_framework_is_imported_only_in_its_module() -> None:
    users: dict[str, set[str]] = {name: set() for name in FRAMEWORKS}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        module = ".".join(parts[:-1] if is_package else parts)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for name in imported_names(tree, module, is_package):
            top = name.split(".")[0]
            if top in users:
                users[top].add(module)
    assert users == {name: {module} for name, (module, _) in FRAMEWORKS.items()}


@pytest.mark.parametrize("framework", sorted(FRAMEWORKS))
def test_a_missing_framework_names_its_extra(framework: str) -> None:
    module, extra = FRAMEWORKS[framework]
    script = (
        f"import sys\nsys.modules[{framework!r}] = None\n"
        "from instructembed.errors import MissingExtraError\n"
        f"try:\n    import {module}\nexcept MissingExtraError as e:\n    print(e)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(PACKAGE.parent) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"install the [{extra}] extra" in proc.stdout and f"instructembed[{extra}]" in proc.stdout


def test_a_server_client_without_openai_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from instructembed.errors import MissingExtraError
    from instructembed.integrations.engine import RemoteEngine

    monkeypatch.setitem(sys.modules, "openai", None)
    with pytest.raises(MissingExtraError, match=r"\[langchain\] extra"):
        RemoteEngine("http://127.0.0.1:1", api_key=None, model="m")


def test_examples_are_in_the_readme() -> None:
    readme = (PACKAGE.parents[1] / "README.md").read_text(encoding="utf-8")
    examples = sorted(p.name for p in (PACKAGE.parents[1] / "examples").glob("*_example.py"))
    assert examples == [f"{n}_example.py" for n in ("chroma", "haystack", "langchain", "llamaindex")]
    assert "examples/finetune_own_pairs.py" in readme  # the fine-tuning example (tests/train runs it)
    assert "examples/" in readme and "docs/migrating.md" in readme
    assert Path(PACKAGE.parents[1] / "docs" / "migrating.md").exists()
