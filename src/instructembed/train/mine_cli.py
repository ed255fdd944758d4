"""Command-line edge for `instructembed data mine-negatives` (the work is in `train.mining`).

Every option has an `INSTRUCTEMBED_MINE_*` environment twin; the names follow sentence-transformers'
`mine_hard_negatives` (range_min, range_max, max_score, min_score, absolute_margin, relative_margin,
num_negatives, sampling_strategy).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from instructembed.cli_options import friendly_errors
from instructembed.train.config import Shape


@friendly_errors(
    interrupted=lambda kw: (
        f"interrupted; rerun the same command to continue ({kw.get('out')}.partial and "
        f"{kw.get('out')}.mining keep what was done)"
    )
)
def mine_negatives_command(
    pairs: Annotated[
        Path,
        typer.Option(
            help="(query, positive) pairs: JSONL/CSV/TSV/parquet.", envvar="INSTRUCTEMBED_MINE_PAIRS"
        ),
    ],
    corpus: Annotated[
        Path,
        typer.Option(
            help="Texts to mine from: JSONL/CSV/TSV/parquet (--corpus-field) or one text per line.",
            envvar="INSTRUCTEMBED_MINE_CORPUS",
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(
            help="Triplets JSONL for `train --shape triplets`: the pairs' own query and positive columns "
            "plus negative (a list).",
            envvar="INSTRUCTEMBED_MINE_OUT",
        ),
    ],
    model: Annotated[
        str, typer.Option(help="Base model that ranks the corpus.", envvar="INSTRUCTEMBED_MINE_MODEL")
    ] = "all-MiniLM-L6-v2",
    query_field: Annotated[
        str, typer.Option(help="Query column of --pairs.", envvar="INSTRUCTEMBED_MINE_QUERY_FIELD")
    ] = "query",
    positive_field: Annotated[
        str, typer.Option(help="Positive column of --pairs.", envvar="INSTRUCTEMBED_MINE_POSITIVE_FIELD")
    ] = "positive",
    corpus_field: Annotated[
        str, typer.Option(help="Text column of --corpus.", envvar="INSTRUCTEMBED_MINE_CORPUS_FIELD")
    ] = "text",
    query_instruction: Annotated[
        str, typer.Option(help="Instruction for the queries.", envvar="INSTRUCTEMBED_MINE_QUERY_INSTRUCTION")
    ] = "",
    document_instruction: Annotated[
        str,
        typer.Option(help="Instruction for corpus texts.", envvar="INSTRUCTEMBED_MINE_DOCUMENT_INSTRUCTION"),
    ] = "",
    num_negatives: Annotated[
        int, typer.Option(min=1, help="Negatives per pair.", envvar="INSTRUCTEMBED_MINE_NUM_NEGATIVES")
    ] = 3,
    range_min: Annotated[
        int,
        typer.Option(
            min=0,
            help="Skip this many top candidates (likely unlabelled positives); ranks after the positives.",
            envvar="INSTRUCTEMBED_MINE_RANGE_MIN",
        ),
    ] = 0,
    range_max: Annotated[
        int,
        typer.Option(
            min=1, help="Consider candidates ranked below this.", envvar="INSTRUCTEMBED_MINE_RANGE_MAX"
        ),
    ] = 100,
    max_score: Annotated[
        float | None,
        typer.Option(
            help="Drop candidates scoring above this cosine.", envvar="INSTRUCTEMBED_MINE_MAX_SCORE"
        ),
    ] = None,
    min_score: Annotated[
        float | None,
        typer.Option(
            help="Drop candidates scoring below this cosine.", envvar="INSTRUCTEMBED_MINE_MIN_SCORE"
        ),
    ] = None,
    absolute_margin: Annotated[
        float | None,
        typer.Option(
            help="Keep candidates scoring at most (positive's score - this).",
            envvar="INSTRUCTEMBED_MINE_ABSOLUTE_MARGIN",
        ),
    ] = None,
    relative_margin: Annotated[
        float | None,
        typer.Option(
            help="Keep candidates scoring at most positive's score x (1 - this), e.g. 0.05.",
            envvar="INSTRUCTEMBED_MINE_RELATIVE_MARGIN",
        ),
    ] = None,
    sampling_strategy: Annotated[
        str,
        typer.Option(
            help="top (the hardest that pass) or random (a seeded draw among them).",
            envvar="INSTRUCTEMBED_MINE_SAMPLING_STRATEGY",
        ),
    ] = "top",
    seed: Annotated[
        int, typer.Option(help="Seed for random sampling.", envvar="INSTRUCTEMBED_MINE_SEED")
    ] = 42,
    dtype: Annotated[
        str | None,
        typer.Option(help="float32 or bfloat16 (faster on AMX CPUs).", envvar="INSTRUCTEMBED_MINE_DTYPE"),
    ] = None,
    keep_vectors: Annotated[
        bool,
        typer.Option(
            help="Keep the corpus vectors (OUT.mining/) after finishing.",
            envvar="INSTRUCTEMBED_MINE_KEEP_VECTORS",
        ),
    ] = False,
    threads: Annotated[
        int | None, typer.Option(help="CPU threads for torch.", envvar="INSTRUCTEMBED_MINE_THREADS")
    ] = None,
    progress: Annotated[
        bool,
        typer.Option("--progress/--no-progress", help="Progress bars.", envvar="INSTRUCTEMBED_MINE_PROGRESS"),
    ] = True,
) -> None:
    """Mine hard negatives for (query, positive) pairs from a corpus with the base model (resumable)."""
    from instructembed.embedder import Embedder
    from instructembed.train.mining import MiningOptions, Sampling, mine_negatives
    from instructembed.train.user_data import DatasetSpec, Fields, read_pairs
    from instructembed.train.user_eval import read_corpus

    try:
        options = MiningOptions(
            num_negatives=num_negatives,
            range_min=range_min,
            range_max=range_max,
            max_score=max_score,
            min_score=min_score,
            absolute_margin=absolute_margin,
            relative_margin=relative_margin,
            sampling=Sampling(sampling_strategy),
            seed=seed,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    # validate both files before loading the model
    spec = DatasetSpec(pairs, Shape.PAIRS, Fields(query=query_field, positive=positive_field))
    rows = read_pairs(spec)
    texts = read_corpus(corpus, corpus_field)
    embedder = Embedder.load(model, dtype=dtype, threads=threads)
    report = mine_negatives(
        embedder,
        rows,
        texts,
        out,
        options,
        query_instruction=query_instruction,
        document_instruction=document_instruction,
        progress=progress,
        keep_vectors=keep_vectors,
        fields=(query_field, positive_field),
    )
    typer.echo(
        f"wrote {report.written} triplets ({report.mean_negatives:.2f} negatives each) to {report.out}; "
        f"{report.without_negative} of {report.pairs} pairs had no negative under the rules"
        + (f"; resumed after {report.resumed_pairs} pairs" if report.resumed_pairs else "")
    )
