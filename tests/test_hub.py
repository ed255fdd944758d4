"""Hub ids through the Hugging Face cache: revision pinning, HF_HOME / HF_HUB_CACHE, HF_HUB_OFFLINE.

No network here: the cache is laid out as huggingface_hub lays it out (blobs, symlinked snapshots,
refs), which is what a user has after one online `Embedder.load("hkunlp/instructor-large")`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from instructembed import Embedder, ModelNotFoundError
from instructembed.hub import select_files
from instructembed.testing import assert_vectors_close, build_checkpoint, put_in_hub_cache

REPO = "hkunlp/instructor-large"
COMMIT_A = "a" * 40
COMMIT_B = "b" * 40
PAIRS = [("Represent the Science title: ", "3D ActionSLAM"), ("Represent the question: ", "what is it?")]
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def hub_cache(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray, np.ndarray]:
    """A cache holding two commits of REPO: A (released layout, .bin weights) is main, B is tag v2."""
    work = tmp_path_factory.mktemp("hub")
    a = build_checkpoint(work / "src-a", "bert", seed=0, pickle_weights=True)
    (a / "2_Dense" / "model.safetensors").unlink()  # as released: 2_Dense/pytorch_model.bin only
    b = build_checkpoint(work / "src-b", "bert", seed=1)
    cache = work / "cache"
    put_in_hub_cache(cache, REPO, a, COMMIT_A, refs=["main"])
    put_in_hub_cache(cache, REPO, b, COMMIT_B, refs=["v2"])
    return cache, Embedder.load(a).embed(PAIRS), Embedder.load(b).embed(PAIRS)


@pytest.fixture
def offline_cache(
    hub_cache: tuple[Path, np.ndarray, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> tuple[Path, np.ndarray, np.ndarray]:
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(hub_cache[0]))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    return hub_cache


def test_hub_id_loads_from_the_cache_offline(offline_cache: tuple[Path, np.ndarray, np.ndarray]) -> None:
    cache, vecs_a, _ = offline_cache
    model = Embedder.load(REPO)
    assert Path(model.info()["path"]).is_relative_to(cache / "models--hkunlp--instructor-large")
    np.testing.assert_array_equal(model.embed(PAIRS), vecs_a)


@pytest.mark.parametrize("revision", [COMMIT_B, "v2"])
def test_revision_pins_a_commit_or_a_tag(
    revision: str, offline_cache: tuple[Path, np.ndarray, np.ndarray]
) -> None:
    _, vecs_a, vecs_b = offline_cache
    got = Embedder.load(REPO, revision=revision).embed(PAIRS)
    np.testing.assert_array_equal(got, vecs_b)
    assert not np.allclose(got, vecs_a)


def test_uncached_revision_offline_is_one_clear_line(
    offline_cache: tuple[Path, np.ndarray, np.ndarray],
) -> None:
    with pytest.raises(ModelNotFoundError) as info:
        Embedder.load(REPO, revision="v3")
    message = str(info.value)
    assert "\n" not in message and "'hkunlp/instructor-large' at revision 'v3'" in message
    assert "local model directory" in message and len(message) < 800
    with pytest.raises(ModelNotFoundError, match="'hkunlp/instructor-xl'"):
        Embedder.load("hkunlp/instructor-xl")


def test_hf_home_and_hf_hub_offline_from_the_environment(
    hub_cache: tuple[Path, np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    """The variables a user sets, read by huggingface_hub itself in a fresh process."""
    cache, vecs_a, _ = hub_cache
    home = tmp_path / "hf-home"
    home.mkdir()
    (home / "hub").symlink_to(cache)  # HF_HUB_CACHE defaults to $HF_HOME/hub
    out = tmp_path / "vecs.npy"
    script = textwrap.dedent(
        f"""
        import numpy as np
        from instructembed import Embedder
        np.save({str(out)!r}, Embedder.load({REPO!r}).embed({PAIRS!r}))
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_", "TRANSFORMERS_"))}
    env.update(HF_HOME=str(home), HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT / "src"))
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert_vectors_close(np.load(out), vecs_a)


def test_select_files_fetches_one_copy_of_the_weights_per_module() -> None:
    released = [  # the released INSTRUCTOR layout: torch pickles only
        ".gitattributes",
        "README.md",
        "1_Pooling/config.json",
        "2_Dense/config.json",
        "2_Dense/pytorch_model.bin",
        "config.json",
        "config_sentence_transformers.json",
        "modules.json",
        "pytorch_model.bin",
        "sentence_bert_config.json",
        "special_tokens_map.json",
        "spiece.model",
        "tokenizer.json",
        "tokenizer_config.json",
    ]
    assert select_files(released) == sorted(set(released) - {".gitattributes", "README.md"})
    both = [
        *released,
        "model.safetensors",  # a safetensors copy beside the pickle: only it is fetched
        "2_Dense/model.safetensors",
        "onnx/model.onnx",
        "onnx/config.json",
        "openvino/openvino_model.xml",
        "tf_model.h5",
        "training_args.bin",
        "checkpoints/step-100/pytorch_model.bin",
    ]
    got = select_files(both)
    assert "model.safetensors" in got and "2_Dense/model.safetensors" in got
    assert not [f for f in got if f.endswith((".bin", ".onnx", ".xml", ".h5"))]
    assert not [f for f in got if f.startswith(("onnx/", "checkpoints/"))]
    sharded = [
        "config.json",
        "pytorch_model.bin.index.json",
        "pytorch_model-00001-of-00002.bin",
        "pytorch_model-00002-of-00002.bin",
    ]
    assert select_files(sharded) == sorted(sharded)
    assert select_files(["README.md", ".gitattributes"]) == []


class _FakeHub:
    """A local HTTP server that answers as the Hugging Face hub does for one model repo: the
    revision info (sha + file listing), the tree listing, and /resolve/ downloads (HEAD + GET)."""

    def __init__(self, repo_id: str, files: dict[str, bytes], commit: str) -> None:
        import hashlib
        import json
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from urllib.parse import unquote, urlparse

        self.fetched: list[str] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _send(self, status: int, body: bytes, headers: dict[str, str], head: bool = False) -> None:
                self.send_response(status)
                for key, value in {**headers, "Content-Length": str(len(body))}.items():
                    self.send_header(key, value)
                self.end_headers()
                if not head:
                    self.wfile.write(body)

            def _json(self, status: int, data: object, headers: dict[str, str] | None = None) -> None:
                body = json.dumps(data).encode()
                self._send(status, body, {"Content-Type": "application/json", **(headers or {})})

            def _route(self, head: bool) -> None:
                path = unquote(urlparse(self.path).path)
                api = f"/api/models/{repo_id}/"
                resolve = f"/{repo_id}/resolve/"
                if path == api.rstrip("/") or path.startswith(api + "revision/"):
                    if path.startswith(api) and path[len(api + "revision/") :] not in ("main", commit):
                        self._json(404, {"error": "Revision Not Found"}, {"X-Error-Code": "RevisionNotFound"})
                        return
                    siblings = [{"rfilename": name} for name in sorted(files)]
                    self._json(200, {"id": repo_id, "sha": commit, "siblings": siblings})
                elif path.startswith(api + "tree/"):
                    tree = [
                        {"type": "file", "path": n, "size": len(b), "oid": hashlib.sha1(b).hexdigest()}
                        for n, b in sorted(files.items())
                    ]
                    self._json(200, tree)
                elif path.startswith(resolve):
                    name = path[len(resolve) :].split("/", 1)[1]
                    if name not in files:
                        self._json(404, {"error": "Entry not found"}, {"X-Error-Code": "EntryNotFound"})
                        return
                    if not head:
                        hub.fetched.append(name)
                    etag = '"' + hashlib.sha256(files[name]).hexdigest() + '"'
                    self._send(200, files[name], {"X-Repo-Commit": commit, "ETag": etag}, head=head)
                else:
                    self._json(404, {"error": "Repository Not Found"}, {"X-Error-Code": "RepoNotFound"})

            def do_GET(self) -> None:
                self._route(head=False)

            def do_HEAD(self) -> None:
                self._route(head=True)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_online_download_fetches_what_the_model_needs_then_works_offline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import huggingface_hub.constants as hub_constants

    source = build_checkpoint(tmp_path / "src", "bert", pickle_weights=True)
    (source / "2_Dense" / "model.safetensors").unlink()  # the released layout
    files = {str(p.relative_to(source)): p.read_bytes() for p in source.rglob("*") if p.is_file()}
    files |= {"README.md": b"# a model card", "onnx/model.onnx": b"not needed", "onnx/config.json": b"{}"}
    hub = _FakeHub(REPO, files, COMMIT_A)
    try:
        monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", False)
        monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(tmp_path / "cache"))
        monkeypatch.setattr(hub_constants, "ENDPOINT", hub.url)
        monkeypatch.setattr(
            hub_constants, "HUGGINGFACE_CO_URL_TEMPLATE", hub.url + "/{repo_id}/resolve/{revision}/{filename}"
        )
        expected = Embedder.load(source).embed(PAIRS)
        np.testing.assert_array_equal(Embedder.load(REPO).embed(PAIRS), expected)
        assert sorted(hub.fetched) == select_files(files)
        assert "2_Dense/pytorch_model.bin" in hub.fetched and "onnx/model.onnx" not in hub.fetched
        with pytest.raises(ModelNotFoundError, match="revision 'nope' does not exist"):
            Embedder.load(REPO, revision="nope")
        with pytest.raises(ModelNotFoundError, match="hub repo you can read"):
            Embedder.load("hkunlp/no-such-model")
    finally:
        hub.close()
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)  # the hub is gone: the cache serves
    np.testing.assert_array_equal(Embedder.load(REPO).embed(PAIRS), expected)
    refs_main = tmp_path / "cache" / "models--hkunlp--instructor-large" / "refs" / "main"
    assert refs_main.read_text() == COMMIT_A
