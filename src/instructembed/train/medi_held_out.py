"""The wider held-out set's texts (issue 27), for the build's normalised-text decontamination.

The first mixture was checked against the 11 held-out tasks' test texts (`medi_build.held_out_texts`).
The wider held-out set adds RedditClustering-local and StackExchangeClustering-local, full SummEval
and the three Billboard tasks, and the shared data README asks to keep the paper's other evaluations
(prompt retrieval) out of training too. Their loaders live in other modules (some are still being
written), so this reads the raw files of those folders generically and over-covers on purpose: every
line of a text file, every tab field, every string anywhere in a JSON / JSONL record, and every
sentence of a long one. A training text is dropped when it equals any of them after `normalize`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from instructembed.errors import InputFileError

#: shared-data folders of the wider held-out set (their every text is held out)
WIDE_FOLDERS = (
    "reddit_clustering_tweac",
    "stackexchange_clustering_tweac",
    "summeval",
    "billboard_mscoco_thumb",
    "billboard_cnndm_thumb",
    "billboard_wmt20_zhen",
    "prompt_retrieval_instructor",
)
_SKIP = ("SOURCE.md", "README.md", "LICENSE")


def _strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def file_texts(path: Path) -> Iterator[str]:
    """Every text a held-out file can hold (see the module docstring)."""
    raw = path.read_bytes().decode("utf-8", errors="replace")
    whole: object = None
    if path.suffix == ".json":
        try:
            whole = json.loads(raw)
        except json.JSONDecodeError:
            whole = None  # some `.json` files are JSON lines (mscoco_references.json)
    if whole is not None:
        yield from _strings(whole)
    elif path.suffix in {".json", ".jsonl"}:
        for n, line in enumerate(raw.splitlines(), start=1):
            if line.strip():
                try:
                    yield from _strings(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise InputFileError(f"{path}:{n}: not a JSON line ({exc})") from None
    else:  # .txt, .tsv, .yaml: lines and tab fields
        for line in raw.splitlines():
            yield line
            if "\t" in line:
                yield from line.split("\t")


def wider_held_out_files(data_dir: Path) -> list[Path]:
    files = []
    for folder in WIDE_FOLDERS:
        root = data_dir / folder
        if not root.is_dir():
            raise InputFileError(
                f"{root}: held-out folder not found; --data-dir must be the shared data folder (its README "
                "lists it), or build with held_out='v1' to check only the first 11 held-out tasks"
            )
        files += [p for p in sorted(root.rglob("*")) if p.is_file() and not p.name.startswith(_SKIP)]
    return files
