"""`embed --dimensions` / `--precision`: the file holds `vectors_out.truncate` / `quantize` of what
`Embedder.embed` returns, in the matching dtype; bad values are refused before anything is written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from instructembed import Embedder
from instructembed.cli import app
from instructembed.testing import assert_vectors_close
from instructembed.vectors_out import calibration_ranges, dequantize, quantize, truncate, unpack_bits

TEXTS = [f"sentence number {i} about {w}" for i, w in enumerate(["cats", "boats", "rain", "glaciers"] * 3)]


def _embed(model: Path, out: Path, *extra: str) -> str:
    source = out.parent / "in.txt"
    source.write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["embed", "-m", str(model), "-i", str(source), "-o", str(out), *extra])
    assert result.exit_code == 0, result.output
    return result.output


def test_dimensions_truncate_and_renormalize(tiny_bert_dir: Path, tmp_path: Path) -> None:
    model = Embedder.load(tiny_bert_dir)
    d = model.dimension // 2
    output = _embed(tiny_bert_dir, tmp_path / "out.npy", "--dimensions", str(d))
    got = np.load(tmp_path / "out.npy")
    assert got.dtype == np.float32 and got.shape == (len(TEXTS), d)
    assert_vectors_close(got, truncate(model.embed(TEXTS), d))
    assert f"wrote {len(TEXTS)} x {d} embeddings" in output


@pytest.mark.parametrize("precision", ["int8", "uint8"])
def test_int8_codes_with_calibrated_ranges(tiny_bert_dir: Path, tmp_path: Path, precision: str) -> None:
    model = Embedder.load(tiny_bert_dir)
    d = model.dimension // 2
    _embed(tiny_bert_dir, tmp_path / "out.npy", "--dimensions", str(d), "--precision", precision)
    got = np.load(tmp_path / "out.npy")
    ranges = calibration_ranges(model, dimensions=d)
    expected = quantize(truncate(model.embed(TEXTS), d), precision, ranges)
    assert got.dtype == expected.dtype and got.shape == expected.shape
    # separate computations agree to ~1e-7, so a value on a step boundary may land one code apart
    assert np.abs(got.astype(np.int16) - expected.astype(np.int16)).max() <= 1
    restored, original = dequantize(got, precision, ranges), truncate(model.embed(TEXTS), d)
    inside = (original >= ranges.starts) & (original <= ranges.starts + 255 * ranges.steps)
    assert np.abs(restored - original)[inside].max() <= ranges.steps.max()  # outside: clipped to an end
    ends = got.astype(np.int16) + (128 if precision == "int8" else 0)
    assert set(np.unique(ends[~inside])) <= {0, 255}


def test_binary_to_parquet(tiny_bert_dir: Path, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    model = Embedder.load(tiny_bert_dir)
    _embed(tiny_bert_dir, tmp_path / "out.parquet", "--precision", "ubinary")
    column = pq.read_table(tmp_path / "out.parquet").column("embedding")
    assert str(column.type).startswith("fixed_size_list<element: uint8>")
    got = np.array(column.to_pylist(), dtype=np.uint8)
    vectors = model.embed(TEXTS)
    assert got.shape == (len(TEXTS), (model.dimension + 7) // 8)
    signs = unpack_bits(got, model.dimension)
    clear = np.abs(vectors) > 1e-5  # a coordinate this close to 0 may flip between computations
    np.testing.assert_array_equal(signs[clear], np.where(vectors > 0, 1.0, -1.0)[clear])


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--dimensions", "100000"], "ask for at most that"),
        (["--dimensions", "0"], "--dimensions"),
        (["--precision", "float16"], "float16"),
        (["--precision", "int8", "--engine", "ray"], "do not apply to --engine ray"),
    ],
)
def test_bad_output_controls_are_refused_and_write_nothing(
    tiny_bert_dir: Path, tmp_path: Path, extra: list[str], message: str
) -> None:
    source = tmp_path / "in.txt"
    source.write_text("a\nb\n", encoding="utf-8")
    out = tmp_path / ("out" if "ray" in extra else "out.npy")
    result = CliRunner().invoke(
        app, ["embed", "-m", str(tiny_bert_dir), "-i", str(source), "-o", str(out), *extra]
    )
    assert result.exit_code != 0 and message in result.output, result.output
    assert not out.exists() and not list(tmp_path.glob(".out*"))
