"""Smoke tests of an *installed* instructembed, one per extra; `release_check.py` runs each in a fresh venv.

    <venv>/bin/python release_smoke.py core --reference ref.npy --forbid /path/to/checkout

Each smoke runs in its own process, from a directory outside the checkout, with an empty HOME (so
~/.cache/instructembed is empty: every export, calibration and packaged file is read from the wheel).
It checks that `instructembed` is imported from the venv, not from the checkout, and compares what it
embeds with the vectors the checkout's own code computed (`reference`), so "works" means "gives the
checkout's vectors".

The venv is shared (one install for all), so each smoke test first makes every extra's module that
its own extras do not install unimportable -- in its process and, through a `sitecustomize.py`, in
the commands it starts: the core runs as if no extra were installed, `[onnx]` as if only `[onnx]` were.

Adding an extra (the index, an integration, the Ray engine): write one function below decorated with
`@smoke(name, extras=(...))`; `release_check.py` installs the union of the extras and runs it.
Only the standard library is imported at module level: `release_check.py` imports this file for the
list of smoke tests, and the `reference` command runs it with the checkout's environment.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MODEL = "all-MiniLM-L6-v2"
#: (instruction, text) pairs: embedded by the checkout for the reference, then by every smoke test.
ITEMS = [
    ("Represent the Science title:", "3D ActionSLAM: wearable person tracking in multi-floor environments"),
    ("Represent the question for retrieving supporting documents:", "what is the capital of France?"),
    ("Represent the Wikipedia document for retrieval:", "Paris is the capital and largest city of France."),
    ("Represent the tweet for classifying the sentiment:", "worst flight ever, 4 hours on the tarmac"),
    ("Represent the sentence:", "A man is playing a guitar on stage."),
    ("", "no instruction at all"),
]
#: The importable modules each extra brings. The core smoke test blocks them all: the core must work
#: without any extra.
EXTRA_MODULES = {
    "onnx": ("onnxruntime", "onnx"),
    "openvino": ("openvino", "nncf"),
    "server": ("fastapi", "uvicorn", "prometheus_client"),
    "eval": ("sklearn", "scipy", "pytrec_eval", "datasets"),
    "train": ("matplotlib",),
    "lora": ("peft",),
    "parquet": ("pyarrow",),
    "langchain": ("langchain_core",),
    "llamaindex": ("llama_index",),
    "chroma": ("chromadb",),
    "haystack": ("haystack",),
    "index": ("faiss",),
    "ray": ("ray",),
}


@dataclass(frozen=True)
class Smoke:
    name: str
    extras: tuple[str, ...]  # what `pip install 'instructembed[...]'` needs for it
    what: str  # one line for the release check's summary
    run: Callable[[argparse.Namespace], None]


SMOKES: dict[str, Smoke] = {}


def smoke(name: str, extras: tuple[str, ...] = ()) -> Callable[[Callable[[argparse.Namespace], None]], Any]:
    def register(func: Callable[[argparse.Namespace], None]) -> Callable[[argparse.Namespace], None]:
        SMOKES[name] = Smoke(name, extras, (func.__doc__ or name).strip().splitlines()[0], func)
        return func

    return register


class SmokeFailure(Exception):
    """What the installed package did differently from the checkout."""


def check(condition: bool, message: str) -> None:
    if not condition:
        raise SmokeFailure(message)


# -- helpers ------------------------------------------------------------------------------------------


def _installed(forbid: Path | None) -> Any:
    """Import instructembed and make sure it is the venv's copy, not the checkout's."""
    import instructembed

    where = Path(instructembed.__file__).resolve()
    check(
        str(where).startswith(str(Path(sys.prefix).resolve())),
        f"instructembed was imported from {where}, not from this venv ({sys.prefix})",
    )
    if forbid is not None:
        check(forbid.resolve() not in where.parents, f"instructembed was imported from the checkout: {where}")
    return instructembed


def _cli() -> Path:
    """The `instructembed` console script the wheel installed into this venv."""
    script = Path(sys.executable).parent / "instructembed"
    check(script.is_file(), f"the wheel installed no console script at {script}")
    return script


def _run(args: Sequence[object], timeout: float = 600) -> str:
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise SmokeFailure(
            f"{' '.join(map(str, args))} exited {done.returncode}:\n{done.stdout[-2000:]}{done.stderr[-3000:]}"
        )
    return done.stdout


def _reference(args: argparse.Namespace) -> Any:
    import numpy as np

    return np.load(args.reference)


def _same(got: Any, args: argparse.Namespace, what: str, *, atol: float) -> None:
    import numpy as np

    expected = _reference(args)
    check(got.shape == expected.shape, f"{what}: shape {got.shape}, the checkout gives {expected.shape}")
    diff = float(np.abs(got - expected).max())
    check(diff <= atol, f"{what}: max |difference| from the checkout's vectors {diff:.2e} > {atol}")
    print(f"  {what}: max |diff| vs checkout {diff:.1e}")


def _close(got: Any, args: argparse.Namespace, what: str, *, min_cos: float) -> None:
    """Quantized graphs: every row points the way the checkout's fp32 row does (vectors are unit length)."""
    expected = _reference(args)
    check(got.shape == expected.shape, f"{what}: shape {got.shape}, the checkout gives {expected.shape}")
    cos = (got * expected).sum(axis=1) / (
        ((got * got).sum(axis=1) * (expected * expected).sum(axis=1)) ** 0.5
    )
    check(
        float(cos.min()) >= min_cos, f"{what}: min cosine to the checkout's fp32 {cos.min():.4f} < {min_cos}"
    )
    print(f"  {what}: min cosine vs checkout fp32 {cos.min():.4f}")


def _jsonl(path: Path) -> Path:
    with path.open("w", encoding="utf-8") as f:
        for i, (instruction, text) in enumerate(ITEMS):
            f.write(json.dumps({"id": f"row-{i}", "instruction": instruction, "text": text}) + "\n")
    return path


def _embed_items(out: Path) -> Path:
    """`instructembed embed` of ITEMS (each row's own instruction) into `out` (.npy or .parquet)."""
    items = _jsonl(Path("items.jsonl"))
    _run(
        [
            _cli(),
            "embed",
            "--input",
            items,
            "--instruction-field",
            "instruction",
            "--output",
            out,
            "--no-progress",
        ]
    )
    return out


def _exported_into(cache: Path, what: str) -> None:
    files = [p for p in cache.rglob("*") if p.is_file()]
    check(bool(files), f"{what}: nothing was exported into the empty cache {cache}")


# -- as if only the smoke's own extras were installed -------------------------------------------------

BLOCK_ENV = "RELEASE_SMOKE_BLOCK"
SITECUSTOMIZE = f"""import os, sys
for _name in filter(None, os.environ.get({BLOCK_ENV!r}, "").split(",")):
    sys.modules[_name] = None  # `import _name` now raises ImportError, as if it were not installed
"""


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def installed_by(extras: tuple[str, ...]) -> set[str]:
    """Normalized names of every distribution `pip install 'instructembed[extras]'` brings (transitively).

    Requirements with environment markers count as brought (over-counting only blocks less).
    """
    from importlib.metadata import PackageNotFoundError, distribution

    done: dict[str, set[str]] = {}
    todo: list[tuple[str, set[str]]] = [("instructembed", set(extras))]
    while todo:
        name, wanted = todo.pop()
        key = _norm(name)
        if key in done and wanted <= done[key]:
            continue
        done.setdefault(key, set()).update(wanted)
        try:
            requires = distribution(name).requires or []
        except PackageNotFoundError:
            continue
        for requirement in requires:
            spec, _, marker = requirement.partition(";")
            extra = re.search(r"extra\s*==\s*[\"']([^\"']+)", marker)
            if extra and _norm(extra.group(1)) not in {_norm(e) for e in wanted}:
                continue
            found = re.match(r"\s*([A-Za-z0-9._-]+)\s*(?:\[([^\]]*)\])?", spec)
            if found:
                todo.append(
                    (found.group(1), {e.strip() for e in (found.group(2) or "").split(",") if e.strip()})
                )
    return set(done)


def block_other_extras(extras: tuple[str, ...], folder: Path) -> list[str]:
    """Make the extras' modules that `extras` do not install unimportable here and in child processes."""
    from importlib.metadata import packages_distributions

    brought = installed_by(extras)
    providers = packages_distributions()
    blocked = sorted(
        module
        for modules in EXTRA_MODULES.values()
        for module in modules
        if not any(_norm(dist) in brought for dist in providers.get(module, []))
    )
    for module in blocked:
        sys.modules[module] = None  # type: ignore[assignment]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(SITECUSTOMIZE, encoding="utf-8")
    os.environ[BLOCK_ENV] = ",".join(blocked)
    os.environ["PYTHONPATH"] = str(folder.resolve())
    return blocked


# -- the smoke tests ----------------------------------------------------------------------------------


@smoke("core")
def core(args: argparse.Namespace) -> None:
    """Embedder.embed; the CLI's --version, info and embed (JSONL -> .npy); as if no extra were installed."""
    package = _installed(args.forbid)
    from importlib.metadata import version

    from instructembed import Embedder

    check(package.__version__ == version("instructembed"), f"__version__ {package.__version__} != metadata")
    model = Embedder.load(MODEL, cache_dir=args.cache)
    _same(model.embed(ITEMS), args, "Embedder.embed (torch fp32)", atol=1e-5)

    cli = _cli()
    shown = _run([cli, "--version"]).strip()
    check(shown == f"instructembed {package.__version__}", f"instructembed --version printed {shown!r}")
    info = json.loads(_run([cli, "info", MODEL, "--json"]))
    check(
        info.get("instructembed_version") == package.__version__,
        f"info --json shows version {info.get('instructembed_version')!r}",
    )
    out = _embed_items(Path("vectors.npy"))
    import numpy as np

    _same(np.load(out), args, "instructembed embed -> .npy", atol=1e-5)


@smoke("parquet", extras=("parquet",))
def parquet(args: argparse.Namespace) -> None:
    """instructembed embed JSONL -> .parquet, ids kept."""
    _installed(args.forbid)
    import numpy as np
    import pyarrow.parquet as pq

    out = _embed_items(Path("vectors.parquet"))
    table = pq.read_table(out).to_pydict()
    check(table["id"] == [f"row-{i}" for i in range(len(ITEMS))], f"parquet ids: {table['id']}")
    vectors = np.array(table[next(k for k in table if k != "id")], dtype=np.float32)
    _same(vectors, args, "instructembed embed -> .parquet", atol=1e-5)


@smoke("onnx", extras=("onnx",))
def onnx(args: argparse.Namespace) -> None:
    """backend='onnx' fp32 and int8, exported into an empty cache."""
    _installed(args.forbid)
    from instructembed import Embedder

    fp32 = Embedder.load(MODEL, backend="onnx", cache_dir=args.cache)
    _same(fp32.embed(ITEMS), args, "onnx fp32", atol=1e-4)
    int8 = Embedder.load(MODEL, backend="onnx", quantize="int8", cache_dir=args.cache)
    _close(int8.embed(ITEMS), args, "onnx int8 (dynamic)", min_cos=0.97)
    _exported_into(args.cache, "onnx")


@smoke("openvino", extras=("openvino",))
def openvino(args: argparse.Namespace) -> None:
    """backend='openvino' int8: NNCF static int8 calibrated on the packaged calibration set."""
    _installed(args.forbid)
    from instructembed import Embedder

    int8 = Embedder.load(MODEL, backend="openvino", quantize="int8", cache_dir=args.cache)
    _close(int8.embed(ITEMS), args, "openvino int8 (static, packaged calibration)", min_cos=0.97)
    _exported_into(args.cache, "openvino")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_healthy(url: str, server: subprocess.Popen[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SmokeFailure(f"the server exited with {server.returncode} before answering /health")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise SmokeFailure(f"{url} did not answer 200 within {timeout:.0f} s")


def _one_request_then_stop(proc: subprocess.Popen[str], port: int, args: argparse.Namespace) -> int:
    """Wait for /health, send one /v1/embeddings with the openai client, SIGTERM; the exit status."""
    import numpy as np
    import openai

    try:
        _wait_healthy(f"http://127.0.0.1:{port}/health", proc, timeout=180)
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused", max_retries=0)
        items = [{"instruction": i, "text": t} for i, t in ITEMS]
        reply = client.embeddings.create(model=MODEL, input=[], extra_body={"input": items})
        got = np.array([row.embedding for row in reply.data], dtype=np.float32)
        _same(got, args, "POST /v1/embeddings (openai client)", atol=1e-5)
        proc.send_signal(signal.SIGTERM)
        return proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@smoke("server", extras=("server",))
def server(args: argparse.Namespace) -> None:
    """serve on 127.0.0.1 (a free port), one /v1/embeddings with the openai client, SIGTERM stops it."""
    _installed(args.forbid)
    port = _free_port()
    cmd = [str(_cli()), "serve", "--model", MODEL, "--host", "127.0.0.1", "--port", str(port)]
    with Path("server.log").open("w", encoding="utf-8") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, text=True)
        code = _one_request_then_stop(proc, port, args)
    # uvicorn shuts down gracefully (lifespan end), then re-raises the signal: exit status -SIGTERM.
    text = Path("server.log").read_text(encoding="utf-8")
    check(code in (0, -signal.SIGTERM), f"the server exited with {code} on SIGTERM:\n{text[-2000:]}")
    check("Application shutdown complete" in text, f"no clean shutdown in the server's log:\n{text[-2000:]}")
    print(f"  server on port {port}: one request, then a clean shutdown on SIGTERM (exit {code})")


@smoke("eval", extras=("eval",))
def evaluate(args: argparse.Namespace) -> None:
    """instructembed eval STSBenchmark --limit 100 on the local data (the packaged instruction tables)."""
    package = _installed(args.forbid)
    check(args.data_dir is not None and args.data_dir.is_dir(), f"no data directory at {args.data_dir}")
    out = Path("eval")
    cmd: list[object] = [_cli(), "eval", "--model", MODEL, "--tasks", "STSBenchmark", "--limit", "100"]
    _run([*cmd, "--no-resume", "--data-dir", args.data_dir, "--out", out])
    result = json.loads((out / "STSBenchmark.json").read_text(encoding="utf-8"))
    # all-MiniLM-L6-v2 scores ~82 Spearman on the full STS-B test set; a broken path lands far below.
    check(60 < result["main_score"] < 95, f"STSBenchmark main score {result['main_score']}")
    check(
        result["instructions_source"] == "instructor-large", f"instructions {result['instructions_source']}"
    )
    # Provenance of an installed package: its version, and no git commit (it is not a checkout).
    check(
        result["instructembed_version"] == package.__version__, f"version {result['instructembed_version']}"
    )
    check(result["git_commit"] is None, f"an installed package recorded git commit {result['git_commit']}")
    print(f"  eval STSBenchmark (limit 100): {result['main_score']:.2f}")


def _train_two_steps(args: argparse.Namespace, *extra: object) -> tuple[Path, list[float]]:
    """`instructembed train` two steps on a small MEDI file; the trained model must load and embed."""
    from instructembed import Embedder

    data = Path("medi.jsonl")
    with data.open("w", encoding="utf-8") as f:
        for i in range(8):
            q, p, n = ITEMS[i % 5], ITEMS[(i + 1) % 5], ITEMS[(i + 2) % 5]
            record = {"query": list(q), "pos": list(p), "neg": list(n), "task_name": "smoke"}
            f.write(json.dumps(record) + "\n")
    out = Path("run-lora" if extra else "run")
    cmd: list[object] = [_cli(), "train", "--model", MODEL, "--data", data, "--out", out]
    _run([*cmd, "--batch-size", "4", "--max-length", "32", "--max-steps", "2", "--no-progress", *extra])
    steps = (out / "train_log.jsonl").read_text(encoding="utf-8").splitlines()
    check(len(steps) == 2, f"train_log.jsonl has {len(steps)} lines, expected 2 steps")
    losses = [json.loads(step)["loss"] for step in steps]
    check(all(math.isfinite(loss) for loss in losses), f"train losses {losses}")
    vectors = Embedder.load(out / "model").embed(ITEMS)
    check(vectors.shape == _reference(args).shape, f"the trained model embeds to {vectors.shape}")
    return out, losses


@smoke("train", extras=("train",))
def train(args: argparse.Namespace) -> None:
    """instructembed train two steps on a small MEDI file; the trained model loads and embeds."""
    _installed(args.forbid)
    out, losses = _train_two_steps(args)
    check((out / "loss.png").is_file(), "train wrote no loss.png")
    print(f"  train: 2 steps, losses {[round(loss, 3) for loss in losses]}")


@smoke("lora", extras=("lora",))
def lora(args: argparse.Namespace) -> None:
    """instructembed train --lora-rank 4: adapters merged, the saved model loads and embeds without peft."""
    _installed(args.forbid)
    out, losses = _train_two_steps(args, "--lora-rank", "4")
    names = [p.name for p in (out / "model").rglob("*")]
    check(not any("adapter" in n for n in names), f"the saved model still holds adapter files: {names}")
    print(f"  lora: 2 steps, losses {[round(loss, 3) for loss in losses]}, adapters merged")


def _row_match(got: Any, row: int, args: argparse.Namespace, what: str) -> None:
    """One embedded item against the checkout's vector for the same (instruction, text)."""
    import numpy as np

    expected = _reference(args)[row]
    vector = np.asarray(got, dtype=np.float32)
    check(
        vector.shape == expected.shape, f"{what}: shape {vector.shape}, the checkout gives {expected.shape}"
    )
    diff = float(np.abs(vector - expected).max())
    check(diff <= 1e-5, f"{what}: max |difference| from the checkout's vector {diff:.2e} > 1e-5")
    print(f"  {what}: max |diff| vs checkout {diff:.1e}")


@smoke("langchain", extras=("langchain",))
def langchain(args: argparse.Namespace) -> None:
    """LangChain InstructEmbeddings: embed_query / embed_documents give the checkout's vectors."""
    _installed(args.forbid)
    from instructembed.integrations.langchain import InstructEmbeddings

    lc = InstructEmbeddings(model=MODEL, query_instruction=ITEMS[1][0], embed_instruction=ITEMS[2][0])
    _row_match(lc.embed_query(ITEMS[1][1]), 1, args, "langchain embed_query")
    _row_match(lc.embed_documents([ITEMS[2][1]])[0], 2, args, "langchain embed_documents")


@smoke("llamaindex", extras=("llamaindex",))
def llamaindex(args: argparse.Namespace) -> None:
    """LlamaIndex InstructEmbedding: query and text embeddings give the checkout's vectors."""
    _installed(args.forbid)
    from instructembed.integrations.llamaindex import InstructEmbedding

    li = InstructEmbedding(MODEL, query_instruction=ITEMS[1][0], text_instruction=ITEMS[2][0])
    _row_match(li.get_query_embedding(ITEMS[1][1]), 1, args, "llamaindex query")
    _row_match(li.get_text_embedding_batch([ITEMS[2][1]])[0], 2, args, "llamaindex text batch")


@smoke("chroma", extras=("chroma",))
def chroma(args: argparse.Namespace) -> None:
    """Chroma InstructEmbeddingFunction in a real PersistentClient: add two documents, query finds one."""
    _installed(args.forbid)
    os.environ["ANONYMIZED_TELEMETRY"] = "False"
    import chromadb
    from chromadb.config import Settings

    from instructembed.integrations.chroma import InstructEmbeddingFunction

    fn = InstructEmbeddingFunction(MODEL, document_instruction=ITEMS[2][0], query_instruction=ITEMS[1][0])
    _row_match(fn.embed_query([ITEMS[1][1]])[0], 1, args, "chroma embed_query")
    client = chromadb.PersistentClient(path="chroma", settings=Settings(anonymized_telemetry=False))
    docs = client.create_collection("smoke", embedding_function=fn)  # type: ignore[arg-type]
    docs.add(ids=["paris", "guitar"], documents=[ITEMS[2][1], ITEMS[4][1]])
    hits = docs.query(query_texts=[ITEMS[1][1]], n_results=1)
    check(hits["ids"] == [["paris"]], f"chroma query returned {hits['ids']}, expected [['paris']]")
    print("  chroma: add 2, query -> paris")


@smoke("haystack", extras=("haystack",))
def haystack(args: argparse.Namespace) -> None:
    """Haystack text embedder gives the checkout's vectors."""
    _installed(args.forbid)
    os.environ["HAYSTACK_TELEMETRY_ENABLED"] = "False"
    from instructembed.integrations.haystack import InstructTextEmbedder

    text = InstructTextEmbedder(MODEL, instruction=ITEMS[1][0])
    text.warm_up()
    _row_match(text.run(ITEMS[1][1])["embedding"], 1, args, "haystack text embedder")


@smoke("index", extras=("index",))
def index(args: argparse.Namespace) -> None:
    """index build from JSONL, search from the command line: the top hit and its score are the checkout's."""
    _installed(args.forbid)
    import numpy as np

    docs = Path("docs.jsonl")  # the texts of ITEMS but the query's own (row-1)
    with docs.open("w", encoding="utf-8") as f:
        for i, (_, text) in enumerate(ITEMS):
            if i != 1:
                f.write(json.dumps({"id": f"row-{i}", "text": text}) + "\n")
    _run(
        [
            _cli(),
            "index",
            "build",
            "--input",
            docs,
            "--instruction",
            ITEMS[2][0],
            "--query-instruction",
            ITEMS[1][0],
            "--model",
            MODEL,
            "--out",
            "ix",
            "--no-progress",
        ]
    )
    _run([_cli(), "search", "--index", "ix", "--query", ITEMS[1][1], "--k", "2", "--output", "hits.jsonl"])
    (line,) = Path("hits.jsonl").read_text(encoding="utf-8").splitlines()
    hits = json.loads(line)["hits"]
    check(
        hits[0]["id"] == "row-2",
        f"search for {ITEMS[1][1]!r} ranked {[h['id'] for h in hits]}, not row-2 first",
    )
    ref = _reference(args)
    # The index embeds documents under ITEMS[2]'s instruction: ITEMS[2] itself is the checkout's vector.
    expected = float(np.dot(ref[1], ref[2]))
    diff = abs(hits[0]["score"] - expected)
    check(diff <= 1e-5, f"top score {hits[0]['score']:.6f}, the checkout's vectors give {expected:.6f}")
    info = json.loads(_run([_cli(), "index", "info", "ix", "--json"]))
    check(
        info["documents"] == len(ITEMS) - 1,
        f"index info counts {info['documents']} documents, not {len(ITEMS) - 1}",
    )
    print(f"  index: build {len(ITEMS) - 1} documents, search -> row-2 (score diff vs checkout {diff:.1e})")


@smoke("ray", extras=("ray",))
def ray_engine(args: argparse.Namespace) -> None:
    """embed_dataset on a local Ray runtime (1 CPU, one actor): every row's vector is the checkout's."""
    _installed(args.forbid)
    import os

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import numpy as np
    import ray

    from instructembed.scale import Columns, ModelOptions, connect, embed_dataset

    rows = [{"id": f"row-{i}", "instruction": inst, "text": text} for i, (inst, text) in enumerate(ITEMS)]
    connect(num_cpus=1, object_store_memory=200 * 1024 * 1024)
    try:
        ds = ray.data.from_items(rows, override_num_blocks=2)
        out = embed_dataset(
            ds, ModelOptions(MODEL), columns=Columns(instruction="instruction"), actors=1, preserve_order=True
        ).take_all()
    finally:
        ray.shutdown()
    ids = [r["id"] for r in out]
    check(ids == [r["id"] for r in rows], f"Ray returned the rows {ids}, not each row once in input order")
    _same(np.stack([r["embedding"] for r in out]), args, "embed_dataset on Ray (1 actor)", atol=1e-5)


# >>> Add a smoke test per new extra here (one per framework integration, as `index` and `ray` above). <<<


def reference(args: argparse.Namespace) -> None:
    """Run with the checkout's code: the vectors every smoke test compares with."""
    import numpy as np

    from instructembed import Embedder

    np.save(args.out, Embedder.load(MODEL).embed(ITEMS))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", choices=[*SMOKES, "reference"])
    parser.add_argument("--reference", type=Path, help="the checkout's vectors (.npy)")
    parser.add_argument("--out", type=Path, help="reference: where to write the vectors")
    parser.add_argument("--cache", type=Path, default=Path("cache"), help="an empty export cache")
    parser.add_argument("--data-dir", type=Path, help="the shared data folder (eval)")
    parser.add_argument("--forbid", type=Path, help="the checkout: instructembed must not come from it")
    args = parser.parse_args(argv)
    if args.name == "reference":
        reference(args)
        return 0
    if args.cache.exists() and any(args.cache.iterdir()):
        raise SystemExit(f"--cache {args.cache} is not empty; the smoke tests start from an empty cache")
    chosen = SMOKES[args.name]
    blocked = block_other_extras(chosen.extras, Path("_only_own_extras"))
    print(f"  [{args.name}] extras {list(chosen.extras)}; not importable: {', '.join(blocked) or '-'}")
    try:
        chosen.run(args)
    except SmokeFailure as exc:
        print(f"FAILED {args.name}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
