"""Hub ids as users type them ("hkunlp/instructor-large"), through the Hugging Face cache.

As sentence-transformers does: `revision` pins a branch, tag or commit; files land in the HF cache
(`HF_HUB_CACHE`, `HF_HOME`), and `HF_HUB_OFFLINE=1` (or no network) loads from that cache alone.
Only what a model directory needs is fetched: configs, tokenizer files, and per directory one copy
of the weights, safetensors when the repo has them, else `pytorch_model.bin` (the released INSTRUCTOR
checkpoints keep their Dense layer only as `2_Dense/pytorch_model.bin`). ONNX / OpenVINO / TF / Flax
copies, training state and READMEs are skipped.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from instructembed.errors import ModelNotFoundError

log = logging.getLogger(__name__)

_METADATA_SUFFIXES = (".json", ".txt", ".model")  # configs, vocab.txt, spiece.model
_SAFETENSORS = re.compile(r"model(-\d+-of-\d+)?\.safetensors(\.index\.json)?")
_PICKLE = re.compile(r"pytorch_model(-\d+-of-\d+)?\.bin(\.index\.json)?")
#: Top-level folders of other runtimes' copies; never needed to build the torch model.
_SKIPPED_DIRS = frozenset({"onnx", "openvino", "tf", "flax", "coreml", "checkpoints", "runs"})
#: Present in the cache when a snapshot of this repo was fetched by `download`.
_OFFLINE_PATTERNS = ["config.json", "modules.json", "instructembed.json"]


def select_files(repo_files: Iterable[str]) -> list[str]:
    """The files of a hub repo that a model directory needs (a pure function of the listing)."""
    by_dir: dict[str, list[str]] = {}
    for name in repo_files:
        path = PurePosixPath(name)
        if len(path.parts) > 2 or (len(path.parts) == 2 and path.parts[0] in _SKIPPED_DIRS):
            continue  # modules live at the root or one folder down (1_Pooling, 2_Dense)
        by_dir.setdefault(str(path.parent), []).append(path.name)
    chosen: list[str] = []
    for directory, names in by_dir.items():
        safetensors = [n for n in names if _SAFETENSORS.fullmatch(n)]
        weights = safetensors or [n for n in names if _PICKLE.fullmatch(n)]
        metadata = [n for n in names if n.endswith(_METADATA_SUFFIXES) and n not in weights]
        metadata = [n for n in metadata if not _PICKLE.fullmatch(n)]  # a .bin index without its .bin
        chosen += [str(PurePosixPath(directory) / n) for n in sorted(metadata + weights)]
    return sorted(chosen)


def download(repo_id: str, revision: str | None, known_models: Iterable[str] = ()) -> Path:
    """The snapshot directory of `repo_id` at `revision`, fetched into the HF cache if needed.

    Online, the repo's listing picks the files and `snapshot_download` fetches what the cache lacks
    (so `main` follows the hub, as sentence-transformers does). Offline (`HF_HUB_OFFLINE=1`, or the
    hub unreachable) the cached snapshot for `revision` is used as it is.
    """
    try:
        from huggingface_hub import HfApi, snapshot_download
        from huggingface_hub import constants as hub_constants
        from huggingface_hub.utils import RepositoryNotFoundError, RevisionNotFoundError
    except ImportError as exc:  # pragma: no cover - a dependency of transformers
        raise ModelNotFoundError(
            f"'{repo_id}' is not a local directory and huggingface_hub is missing: pip install huggingface-hub"
        ) from exc
    failure: Exception | None = None
    if not hub_constants.HF_HUB_OFFLINE:
        try:
            info = HfApi().model_info(repo_id, revision=revision)
        except RevisionNotFoundError:
            raise ModelNotFoundError(
                f"revision {revision!r} does not exist in hub repo '{repo_id}'; check the branch, tag or commit"
            ) from None
        except RepositoryNotFoundError:  # also gated / private repos without a token
            raise ModelNotFoundError(
                f"'{repo_id}' is not a local directory, a packaged model or a hub repo you can read; check "
                "the name, or for a private or gated repo log in first (`hf auth login`)"
            ) from None
        except (OSError, ValueError) as exc:  # offline, unreachable, hub down: the cache may still have it
            failure = exc
        else:
            files = select_files(s.rfilename for s in info.siblings or [])
            if not files:
                raise ModelNotFoundError(f"hub repo '{repo_id}' holds no model files; is it a model repo?")
            log.info("fetching %d files of %s (revision %s)", len(files), repo_id, revision or "main")
            try:
                return Path(snapshot_download(repo_id, revision=revision, allow_patterns=files))
            except (OSError, ValueError) as exc:
                failure = exc
    try:
        return Path(
            snapshot_download(
                repo_id, revision=revision, allow_patterns=_OFFLINE_PATTERNS, local_files_only=True
            )
        )
    except (OSError, ValueError) as exc:
        failure = failure or exc
    reason = str(failure).splitlines()[0][:200] if str(failure) else type(failure).__name__
    pinned = f" at revision {revision!r}" if revision else ""
    raise ModelNotFoundError(
        f"'{repo_id}'{pinned} is not a local directory or a packaged model "
        f"({', '.join(sorted(known_models))}), and it could not be fetched from the Hugging Face "
        f"hub ({type(failure).__name__}: {reason}). Offline? Download it once with internet access, or "
        "pass the path of a local model directory."
    ) from None
