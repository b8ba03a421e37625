"""Training plots drawn from pruning_report.json: files written, axes labelled, data from the report only."""

import json

import pytest

from hf_pins.errors import UserError
from hf_pins.plots import (
    SCHEDULE_PLOT,
    SPARSITY_PLOT,
    module_kind,
    schedule_figure,
    sparsity_figure,
    sparsity_table,
    write_training_plots,
)

BERT_MATRICES = ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
                 "intermediate.dense", "output.dense")


def bert_report(layers=3, self_regularization=True):
    modules = {f"bert.encoder.layer.{i}.{m}.weight": 0.7 + 0.02 * i + 0.01 * j
               for i in range(layers) for j, m in enumerate(BERT_MATRICES)}
    return {
        "method": "pins", "task": "rte", "base_model": "bert-base-uncased", "target_sparsity": 0.8, "overall": 0.8,
        "modules": modules, "main_metric": "accuracy",
        "metrics": {"dev": {"accuracy": 0.7}, "test": {"accuracy": 0.68}},
        "self_regularization": self_regularization, "total_steps": 100, "best_step": 90,
        "history": [{"step": s, "target_sparsity": min(0.8, s / 100), "sparsity": min(0.8, s / 100)}
                    for s in range(10, 101, 10)],
        "evaluations": [{"step": s, "sparsity": min(0.8, s / 100), "dev_metric": 0.6 + s / 1000}
                        for s in range(25, 101, 25)],
        "teacher_refreshes": [{"step": 25, "dev_metric": 0.625}, {"step": 75, "dev_metric": 0.675}]
        if self_regularization else [],
        "structure": None,
    }


@pytest.mark.parametrize("name, expected", [
    ("bert.encoder.layer.0.attention.self.query.weight", (0, "query")),
    ("bert.encoder.layer.11.attention.output.dense.weight", (11, "attention output")),
    ("bert.encoder.layer.3.intermediate.dense.weight", (3, "FFN in")),
    ("bert.encoder.layer.3.output.dense.weight", (3, "FFN out")),
    ("roberta.encoder.layer.2.attention.self.value.weight", (2, "value")),
    ("distilbert.transformer.layer.4.attention.k_lin.weight", (4, "key")),
    ("distilbert.transformer.layer.4.attention.out_lin.weight", (4, "attention output")),
    ("distilbert.transformer.layer.4.ffn.lin1.weight", (4, "FFN in")),
    ("distilbert.transformer.layer.4.ffn.lin2.weight", (4, "FFN out")),
    ("deberta.encoder.layer.1.attention.self.query_proj.weight", (1, "query")),
    ("encoder.layer.5.attention.self.in_proj.weight", (5, "attention.self.in_proj")),  # unknown kind keeps its path
    ("classifier.weight", (None, "classifier")),
])
def test_module_kind_reads_layer_and_matrix_from_any_encoder(name, expected):
    assert module_kind(name) == expected


def test_sparsity_table_groups_by_layer_in_module_order():
    kinds, rows = sparsity_table(bert_report(layers=2)["modules"])
    assert kinds == ["query", "key", "value", "attention output", "FFN in", "FFN out"]
    assert [label for label, _ in rows] == ["0", "1"]
    assert rows[1][1]["FFN out"] == pytest.approx(0.72 + 0.05)


def test_sparsity_figure_has_one_bar_per_matrix_and_labelled_axes():
    report = bert_report(layers=3)
    fig = sparsity_figure(report)
    (ax,) = fig.axes
    assert ax.get_xlabel() and ax.get_ylabel() and "Sparsity" in ax.get_title()
    bars = [p for c in ax.containers for p in c]
    assert len(bars) == len(report["modules"])
    assert sorted(b.get_height() for b in bars) == pytest.approx(sorted(report["modules"].values()))
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[:6] == ["query", "key", "value", "attention output", "FFN in", "FFN out"]
    assert any("overall" in t for t in legend) and any("target" in t for t in legend)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "1", "2"]


def test_schedule_figure_plots_history_dev_metric_and_refreshes():
    report = bert_report()
    fig = schedule_figure(report)
    ax, ax2 = fig.axes
    assert ax.get_xlabel() == "optimizer step" and ax.get_ylabel() == "sparsity"
    assert ax2.get_ylabel() == "dev accuracy" and "Sparsity schedule" in ax.get_title()
    lines = {line.get_label(): line for line in ax.get_lines() + ax2.get_lines()}
    assert list(lines["target sparsity"].get_xdata()) == [h["step"] for h in report["history"]]
    assert list(lines["measured sparsity"].get_ydata()) == [h["sparsity"] for h in report["history"]]
    assert list(lines["dev accuracy"].get_ydata()) == [e["dev_metric"] for e in report["evaluations"]]
    refreshes = [c for c in ax2.collections if "teacher" in c.get_label()]
    assert len(refreshes) == 1 and [tuple(p) for p in refreshes[0].get_offsets()] == [(25, 0.625), (75, 0.675)]
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert any("step 90" in t for t in legend)


def test_schedule_without_self_regularization_marks_no_refresh():
    fig = schedule_figure(bert_report(self_regularization=False))
    assert not any("teacher" in c.get_label() for a in fig.axes for c in a.collections)


def test_write_training_plots_writes_pngs(tmp_path):
    (tmp_path / "pruning_report.json").write_text(json.dumps(bert_report()))
    written = write_training_plots(tmp_path)
    assert [p.name for p in written] == [SPARSITY_PLOT, SCHEDULE_PLOT]
    for path in written:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000


def test_write_training_plots_to_another_folder_leaves_the_model_dir_alone(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "pruning_report.json").write_text(json.dumps(bert_report()))
    written = write_training_plots(model, out_dir=tmp_path / "upload")
    assert all(p.parent == tmp_path / "upload" for p in written)
    assert sorted(p.name for p in model.iterdir()) == ["pruning_report.json"]


def test_a_plot_without_data_is_skipped_not_drawn_empty(tmp_path):
    report = bert_report()
    report["history"] = []
    (tmp_path / "pruning_report.json").write_text(json.dumps(report))
    assert [p.name for p in write_training_plots(tmp_path)] == [SPARSITY_PLOT]


def test_missing_or_broken_report_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="pruning_report.json"):
        write_training_plots(tmp_path)
    (tmp_path / "pruning_report.json").write_text("{not json")
    with pytest.raises(UserError, match="not valid JSON"):
        write_training_plots(tmp_path)
