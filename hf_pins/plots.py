"""Plots of a pruning run, drawn from `pruning_report.json` alone so that they can be redrawn at any time.

`write_training_plots(model_dir)` writes `sparsity_per_layer.png` and `schedule.png`; the model card embeds them.
Figures are built on `matplotlib.figure.Figure` with the Agg canvas, never through pyplot: no global backend switch,
no window, no figure left open in a long-running process. matplotlib is imported only when a figure is drawn, so
importing this module (for its file names) stays cheap.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import UserError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

REPORT_FILE = "pruning_report.json"
SPARSITY_PLOT = "sparsity_per_layer.png"
SCHEDULE_PLOT = "schedule.png"
PLOT_FILES = (SPARSITY_PLOT, SCHEDULE_PLOT)

# A repeated block of an encoder: `...layer.3.<rest>` (BERT, RoBERTa, DeBERTa, ELECTRA, MiniLM), `...layers.3.`,
# `...block.3.`, `...h.3.`; DistilBERT's `transformer.layer.3.` matches too.
_LAYER = re.compile(r"(?:^|\.)(?:layer|layers|block|blocks|h)\.(\d+)\.(.+)$")

# Short names for the six projections of a transformer block, matched on the module path inside the block. Anything
# else keeps its own path as its name, so an unfamiliar architecture still gets a correct (if wordier) plot.
_KINDS: tuple[tuple[str, re.Pattern], ...] = (
    ("query", re.compile(r"(^|\.)(query|query_proj|q_lin|q_proj|q)$")),
    ("key", re.compile(r"(^|\.)(key|key_proj|k_lin|k_proj|k)$")),
    ("value", re.compile(r"(^|\.)(value|value_proj|v_lin|v_proj|v)$")),
    ("attention output", re.compile(r"^(attention|attn|self_attn)\..*(dense|out_lin|out_proj|o_proj|o)$")),
    ("FFN in", re.compile(r"^(intermediate(\.dense)?|ffn\.lin1|mlp\.fc1|fc1|mlp\.(up|gate)_proj)$")),
    ("FFN out", re.compile(r"^(output\.dense|ffn\.lin2|mlp\.fc2|fc2|mlp\.down_proj)$")),
)


def module_kind(name: str) -> tuple[int | None, str]:
    """`(layer index, kind)` for a prunable weight name; layer is None for a matrix outside the repeated blocks."""
    base = name[: -len(".weight")] if name.endswith(".weight") else name
    match = _LAYER.search(base)
    if match is None:
        return None, base
    layer, rest = int(match.group(1)), match.group(2)
    for kind, pattern in _KINDS:
        if pattern.search(rest):
            return layer, kind
    return layer, rest


def sparsity_table(modules: dict[str, float]) -> tuple[list[str], list[tuple[str, dict[str, float]]]]:
    """Group per-matrix sparsities into `(kinds, [(layer label, {kind: sparsity})])`, kinds in module order.

    Shared by the plot and the model card so that both show the same grouping.
    """
    kinds: list[str] = []
    layers: dict[int | None, dict[str, float]] = {}
    for name, value in modules.items():
        layer, kind = module_kind(name)
        if kind not in kinds:
            kinds.append(kind)
        layers.setdefault(layer, {})[kind] = float(value)
    ordered = sorted(k for k in layers if k is not None)
    rows = [(str(k), layers[k]) for k in ordered]
    if None in layers:
        rows.append(("other", layers[None]))
    return kinds, rows


def load_report(model_dir: str | Path) -> dict[str, Any]:
    """Read `pruning_report.json`; a missing or broken file is the user's to fix, so it is a UserError."""
    path = Path(model_dir) / REPORT_FILE
    if not path.is_file():
        raise UserError(f"{path} not found: the folder written by `hf-pins train` holds it")
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path} is not valid JSON ({exc})") from exc
    if not isinstance(report, dict):
        raise UserError(f"{path} must hold a JSON object")
    return report


def _new_figure(width: float, height: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _percent_axis(ax) -> None:
    from matplotlib.ticker import PercentFormatter

    ax.set_ylim(0, 1)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))


def _title_prefix(report: dict[str, Any]) -> str:
    parts = [str(report[k]) for k in ("method", "task") if report.get(k)]
    return " on ".join(parts)


def sparsity_figure(report: dict[str, Any]) -> Figure | None:
    """Grouped bars: one group per layer, one bar per projection kind; None when the report lists no module."""
    modules = report.get("modules") or {}
    if not modules:
        return None
    kinds, rows = sparsity_table(modules)
    n = len(rows)
    width = 0.8 / max(len(kinds), 1)
    fig = _new_figure(min(16.0, max(7.0, 0.14 * n * len(kinds) + 3.0)), 4.4)
    ax = fig.add_subplot()
    for i, kind in enumerate(kinds):
        xs = [j + (i - (len(kinds) - 1) / 2) * width for j in range(n)]
        ys = [row.get(kind, float("nan")) for _, row in rows]
        ax.bar(xs, ys, width=width, label=kind)
    overall = report.get("overall")
    if isinstance(overall, (int, float)):
        ax.axhline(overall, color="black", linestyle="--", linewidth=1, label=f"overall {overall:.1%}")
    target = report.get("target_sparsity")
    if isinstance(target, (int, float)):
        ax.axhline(target, color="tab:red", linestyle=":", linewidth=1.2, label=f"target {target:.1%}")
    ax.set_xticks(range(n), [label for label, _ in rows])
    ax.set_xlabel("encoder layer")
    ax.set_ylabel("sparsity (share of weights that are zero)")
    _percent_axis(ax)
    ax.grid(axis="y", alpha=0.3)
    prefix = _title_prefix(report)
    ax.set_title(f"Sparsity per layer and matrix ({prefix})" if prefix else "Sparsity per layer and matrix")
    handles, labels = ax.get_legend_handles_labels()
    lines = len(handles) - len(kinds)  # bars first, then the reference lines
    order = list(range(lines, len(handles))) + list(range(lines))
    ax.legend([handles[i] for i in order], [labels[i] for i in order], loc="upper left", bbox_to_anchor=(1.01, 1.0),
              fontsize="small", frameon=False)
    return fig


def _points(entries: Iterable[dict], x: str, y: str) -> tuple[list[float], list[float]]:
    pairs = [(e[x], e[y]) for e in entries if isinstance(e, dict) and e.get(x) is not None and e.get(y) is not None]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def schedule_figure(report: dict[str, Any]) -> Figure | None:
    """Target and measured sparsity against the step, the dev metric on a second axis, teacher refreshes marked.

    None when the report has no history (a run that never pruned has no schedule to show).
    """
    history = report.get("history") or []
    target_x, target_y = _points(history, "step", "target_sparsity")
    measured_x, measured_y = _points(history, "step", "sparsity")
    if not target_x and not measured_x:
        return None
    metric = report.get("main_metric") or "metric"

    fig = _new_figure(8.0, 4.4)
    ax = fig.add_subplot()
    handles = []
    # Sparsity changes only at mask updates (the history's entries), so both curves are steps; the target is drawn
    # thin and on top so that it stays visible where the measured sparsity meets it exactly.
    if measured_x:
        handles += ax.plot(measured_x, measured_y, color="tab:blue", linewidth=3, alpha=0.55, drawstyle="steps-post",
                           label="measured sparsity")
    if target_x:
        handles += ax.plot(target_x, target_y, color="black", linestyle="--", linewidth=1, drawstyle="steps-post",
                           zorder=3, label="target sparsity")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("sparsity")
    _percent_axis(ax)
    ax.grid(alpha=0.3)

    eval_x, eval_y = _points(report.get("evaluations") or [], "step", "dev_metric")
    refresh_x, refresh_y = _points(report.get("teacher_refreshes") or [], "step", "dev_metric")
    if eval_x or refresh_x:
        ax2 = ax.twinx()
        if eval_x:
            handles += ax2.plot(eval_x, eval_y, color="tab:orange", marker="o", markersize=3, label=f"dev {metric}")
        if refresh_x:
            handles.append(
                ax2.scatter(refresh_x, refresh_y, marker="*", s=110, color="tab:green", zorder=3,
                            label="teacher refreshed (self-regularization)")
            )
        ax2.set_ylabel(f"dev {metric}")

    best = report.get("best_step")
    if isinstance(best, (int, float)):
        label = f"weights kept: best dev {metric} at target (step {best})"
        handles.append(ax.axvline(best, color="tab:purple", linestyle=":", label=label))

    fig.legend(handles=handles, loc="outside lower center", ncols=3, fontsize="small", frameon=False)
    prefix = _title_prefix(report)
    title = f"Sparsity schedule and dev {metric}"
    ax.set_title(f"{title} ({prefix})" if prefix else title)
    return fig


def write_training_plots(model_dir: str | Path, out_dir: str | Path | None = None) -> list[Path]:
    """Draw the plots of the run in `model_dir` into `out_dir` (default: `model_dir`); return the files written.

    A plot whose data the report lacks is skipped rather than drawn empty.
    """
    report = load_report(model_dir)
    target = Path(out_dir) if out_dir is not None else Path(model_dir)
    target.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name, build in ((SPARSITY_PLOT, sparsity_figure), (SCHEDULE_PLOT, schedule_figure)):
        fig = build(report)
        if fig is None:
            continue
        path = target / name
        fig.savefig(path, format="png")
        written.append(path)
    return written
