"""The PNG chart of an eval: accuracy per question (mean with its std across runs), or per tag
when there are more questions than fit side by side, and the latency spread, per persona.
matplotlib is imported here only, with the Agg backend (no display is needed, and ``botkit
chat`` never pays for the import)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from botkit.eval.stats import Summary


def write_chart(path: Path, series: Sequence[tuple[str, Sequence[Summary], Summary]], title: str) -> None:
    """Bars of accuracy per question with std error bars (one colour per persona), and a box
    summary of total latency p50/p95 per persona; written to ``path`` as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    questions = [s.name for s in series[0][1]]
    width = 0.8 / max(1, len(series))
    fig, (acc, lat) = plt.subplots(
        1,
        2,
        figsize=(min(24.0, max(8.0, 0.35 * len(questions) + 5)), 4.5),
        gridspec_kw={"width_ratios": [4, 1]},
    )
    for index, (label, rows, overall) in enumerate(series):
        by_question = {s.name: s for s in rows}
        xs = [i + index * width for i in range(len(questions))]
        means = [by_question[q].accuracy_mean if q in by_question else 0.0 for q in questions]
        stds = [by_question[q].accuracy_std if q in by_question else 0.0 for q in questions]
        acc.bar(
            xs,
            means,
            width,
            yerr=stds,
            capsize=2,
            label=f"{label}: {overall.accuracy_mean * 100:.0f}% ± {overall.accuracy_std * 100:.0f}%",
        )
        lat.errorbar(
            [index],
            [overall.total_p50],
            yerr=[[0.0], [max(0.0, overall.total_p95 - overall.total_p50)]],
            fmt="o",
            capsize=4,
            label=label,
        )
    acc.set_xticks([i + width * (len(series) - 1) / 2 for i in range(len(questions))])
    acc.set_xticklabels(questions, rotation=90, fontsize=7)
    acc.set_ylim(0, 1.05)
    acc.set_ylabel(f"accuracy per {series[0][1][0].scope if series[0][1] else 'question'} (mean ± std)")
    acc.set_title(title, fontsize=10)
    acc.legend(fontsize=8, loc="lower right")
    lat.set_xticks(range(len(series)))
    lat.set_xticklabels([label for label, _, _ in series], rotation=30, fontsize=7)
    lat.set_ylabel("total latency s (p50, bar to p95)")
    lat.set_xlim(-0.5, len(series) - 0.5)
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=110)
    plt.close(fig)
