"""The summary of a run: a markdown table (per task, per-type average, overall) and a bar chart PNG."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from .runner import TaskResult

__all__ = ["markdown_summary", "type_averages", "write_bar_chart", "write_summary"]


def type_averages(results: Sequence[TaskResult]) -> dict[str, float]:
    """Mean main score (x100) per task type, in first-seen order."""
    by_type: dict[str, list[float]] = defaultdict(list)
    for r in results:
        by_type[r.type].append(r.main_score)
    return {t: round(sum(v) / len(v), 2) for t, v in by_type.items()}


def markdown_summary(results: Sequence[TaskResult]) -> str:
    """A markdown report: one row per task, then per-type averages and the overall average."""
    if not results:
        return "No results.\n"
    first = results[0]
    lines = [
        f"# Evaluation: {first.model}",
        "",
        f"Instructions: `{first.instructions_source}`; instructembed {first.instructembed_version or 'unknown'}, "
        f"git commit: `{first.git_commit or 'none (installed package)'}`"
        + (f"; limit: {first.limit}" if first.limit else ""),
        "",
        "| task | type | main score | x100 | time (s) |",
        "| --- | --- | --- | ---: | ---: |",
    ]
    lines += [
        f"| {r.task} | {r.type} | {r.main_score_name} | {r.main_score:.2f} | {r.wall_time_s:.1f} |"
        for r in results
    ]
    lines += ["", "| type | tasks | average |", "| --- | ---: | ---: |"]
    averages = type_averages(results)
    counts: dict[str, int] = defaultdict(int)
    for r in results:
        counts[r.type] += 1
    lines += [f"| {t} | {counts[t]} | {avg:.2f} |" for t, avg in averages.items()]
    overall = sum(r.main_score for r in results) / len(results)
    lines += [f"| **all** | {len(results)} | {overall:.2f} |", ""]
    notes = sorted({f"{r.task}: {n}" for r in results for n in r.notes})
    if notes:
        lines += ["Notes:", "", *(f"- {n}" for n in notes), ""]
    return "\n".join(lines)


def write_bar_chart(results: Sequence[TaskResult], path: Path) -> Path:
    """Horizontal bars of the main score per task, coloured by type (matplotlib, Agg backend)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        from instructembed.errors import MissingExtraError

        raise MissingExtraError("eval", "matplotlib") from None
    types = list(dict.fromkeys(r.type for r in results))
    colours = {t: plt.get_cmap("tab10")(i % 10) for i, t in enumerate(types)}
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(results) + 1.2))
    names = [r.task for r in results][::-1]
    values = [r.main_score for r in results][::-1]
    ax.barh(names, values, color=[colours[r.type] for r in results][::-1])
    for y, v in enumerate(values):
        ax.text(v + 0.5, y, f"{v:.2f}", va="center", fontsize=8)
    ax.set_xlim(min(0.0, min(values) - 5), 105)  # correlations (Billboard, SummEval) can be negative
    ax.set_xlabel("main score x100")
    ax.set_title(f"{results[0].model} ({results[0].instructions_source} instructions)" if results else "")
    handles = [plt.Rectangle((0, 0), 1, 1, color=colours[t]) for t in types]
    ax.legend(handles, types, fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_summary(results: Sequence[TaskResult], out_dir: Path) -> tuple[Path, Path]:
    """`summary.md` and `summary.png` in `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    md = out_dir / "summary.md"
    md.write_text(markdown_summary(results), encoding="utf-8")
    return md, write_bar_chart(results, out_dir / "summary.png")
