"""CI gate: the dev set through `assistant eval`; a regression in answer quality fails the build.

The thresholds sit just under the levels the cited-answers work reached on the dev set (adjust
them here when the measured levels move; the run's report shows the current values).
"""

import json

import pytest

from assistant.cli import main

from .conftest import DEV_SET

MIN_ACCURACY = 0.93  # measured 0.958
MIN_CITATION_PRECISION = 0.93  # measured 0.958
MIN_ABSTENTION = 0.86  # measured 0.952
MAX_FALSE_ABSTENTION = 0.05  # measured 0.000


@pytest.mark.slow
def test_dev_set_meets_the_quality_thresholds(assistant, settings, tmp_path, capsys):
    out = tmp_path / "gate"
    code = main(["eval", "--dataset", str(DEV_SET), "--index", str(settings.index_dir),
                 "--corpus", str(settings.corpus_dir), "--out", str(out), "--no-baseline", "--no-progress",
                 "--min-accuracy", str(MIN_ACCURACY), "--min-citation-precision", str(MIN_CITATION_PRECISION),
                 "--min-abstention", str(MIN_ABSTENTION), "--max-false-abstention", str(MAX_FALSE_ABSTENTION)])
    captured = capsys.readouterr()
    metrics = json.loads((out / "results.json").read_text(encoding="utf-8"))["metrics"]
    assert code == 0, f"quality gate failed (report: {out / 'report.html'}):\n{captured.err}\n{metrics}"
    assert metrics["n_items"] >= 60
