"""GLUE metrics as an `evaluate` module that loads from this folder, with no Hub access.

`evaluate.load("glue", ...)` fetches its script from the Hub, which fails offline. This module gives the same
interface (`config_name` = task, `compute(predictions=..., references=...)`) and delegates the arithmetic to
`hf_pins.metrics.glue`, so there is one implementation of every formula. `evaluate` copies this file into its module
cache before importing it, hence the absolute import.
"""

import datasets
import evaluate

from hf_pins.metrics.glue import glue_metrics

_DESCRIPTION = """\
GLUE task metrics computed offline: matthews_correlation (cola); accuracy (sst2, mnli, qnli, rte, wnli);
accuracy, f1 and combined = their mean (mrpc, qqp); pearson and spearmanr (stsb). Undefined correlations
(constant predictions or references) are reported as 0.0 instead of NaN.
"""

_KWARGS_DESCRIPTION = """\
Args:
    predictions: class ids (int), or predicted similarity scores (float) for stsb.
    references: gold class ids (int), or gold scores (float) for stsb.
Returns:
    dict of metric name to float, as hf_pins.metrics.glue.glue_metrics.
Example:
    >>> metric = hf_pins.metrics.load_glue_metric("mrpc")
    >>> metric.compute(predictions=[1, 0, 1], references=[1, 1, 1])
    {'accuracy': 0.666..., 'f1': 0.8, 'combined': 0.733...}
"""

_CITATION = """\
@inproceedings{wang2019glue,
  title={{GLUE}: A Multi-Task Benchmark and Analysis Platform for Natural Language Understanding},
  author={Wang, Alex and Singh, Amanpreet and Michael, Julian and Hill, Felix and Levy, Omer and Bowman, Samuel R.},
  booktitle={International Conference on Learning Representations},
  year={2019}
}
"""

_TASKS = ("cola", "sst2", "mrpc", "qqp", "stsb", "mnli", "qnli", "rte", "wnli")


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class GlueOffline(evaluate.Metric):
    """One GLUE task's metrics; the task is the `config_name`."""

    def _info(self):
        if self.config_name not in _TASKS:
            raise KeyError(f"unknown GLUE task {self.config_name!r}; accepted tasks: {', '.join(_TASKS)}")
        dtype = "float32" if self.config_name == "stsb" else "int64"
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Value(dtype), "references": datasets.Value(dtype)}),
        )

    def _compute(self, predictions, references):
        return glue_metrics(self.config_name, predictions, references)
