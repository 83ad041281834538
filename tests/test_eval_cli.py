"""`assistant eval` end to end on a small dataset: files, report content, exit codes."""

import json

import pytest

from assistant.cli import main
from evals.compare import RunConfig, ensure_baseline, parse_config, parse_configs
from evals.metrics import METRIC_KEYS

ITEMS = [
    {"id": "fr-barkhane", "question": "Quand l'opération Barkhane s'est-elle retirée du Mali ?", "lang": "fr",
     "must_include": [["15 août 2022"]],
     "evidence": ["L’opération Barkhane s’est définitivement retirée du Mali le 15 août 2022"],
     "reference_answer": "Le 15 août 2022.", "reviewer": "unknown fields are kept"},
    {"id": "en-minusma", "question": "When did the MINUSMA mandate end?", "lang": "en",
     "must_include": [["30 juin 2023"]], "evidence": ["à compter du 30 juin 2023"]},
    {"id": "na-budget", "question": "Quel est le budget annuel du programme en euros ?", "answerable": False,
     "lang": "fr"},
    {"id": "mt-fin", "question": "Et quand a-t-elle officiellement pris fin ?", "lang": "fr",
     "history": [{"role": "user", "content": "Quand Barkhane a-t-elle quitté le Mali ?"},
                 {"role": "assistant", "content": "Le 15 août 2022 [1]."}],
     "must_include": [["9 novembre 2022"]]},
    {"id": "fr-impossible", "question": "Quand l'accord d'Alger a-t-il été signé <b>exactement</b> ?", "lang": "fr",
     "must_include": [["xyzzy-fait-absent-du-corpus"]]},
]
REQUIRED_ITEM_KEYS = {"id", "question", "answer", "abstained", "citations", "correct", "retrieval_rank", "latency_ms",
                      "reason"}


@pytest.fixture
def dataset(tmp_path):
    path = tmp_path / "small.jsonl"
    path.write_text("// small eval set\n" + "\n".join(json.dumps(i, ensure_ascii=False) for i in ITEMS) + "\n",
                    encoding="utf-8")
    return path


def cli(settings, *args):
    return main(["eval", "--index", str(settings.index_dir), "--corpus", str(settings.corpus_dir), "--no-progress",
                 *args])


@pytest.mark.slow
def test_eval_writes_results_and_report_and_passes_reachable_thresholds(assistant, settings, dataset, tmp_path, capsys):
    out = tmp_path / "run"
    code = cli(settings, "--dataset", str(dataset), "--out", str(out), "--no-baseline",
               "--min-accuracy", "0.5", "--min-citation-precision", "0.5", "--min-abstention", "0.5",
               "--max-false-abstention", "0.5")
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "answer_accuracy" in captured.out and "Seuil atteint" in captured.out

    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert {"metrics", "config", "items"} <= set(results)
    assert tuple(results["metrics"]) == METRIC_KEYS
    assert results["metrics"]["n_items"] == 5
    assert results["config"]["engine"] == "extractive" and results["config"]["dataset"] == str(dataset)
    assert len(results["items"]) == 5
    for item in results["items"]:
        assert REQUIRED_ITEM_KEYS <= set(item), item["id"]
        for citation in item["citations"]:
            assert {"number", "text", "source", "section"} <= set(citation)
    by_id = {i["id"]: i for i in results["items"]}
    assert by_id["fr-impossible"]["correct"] is False
    assert 'missing fact: ["xyzzy-fait-absent-du-corpus"]' in by_id["fr-impossible"]["reason"]
    assert by_id["fr-barkhane"]["correct"] is True and by_id["fr-barkhane"]["retrieval_rank"] is not None
    assert by_id["na-budget"]["abstained"] is True

    report = (out / "report.html").read_text(encoding="utf-8")
    assert report.startswith("<!DOCTYPE html>")
    assert report.count("<svg") >= 3  # metrics, categories, latency histogram
    for text in ("answer_accuracy", "citation_precision", "français", "anglais", "sans réponse", "multi-tours",
                 "Latence", "fr-barkhane", "xyzzy-fait-absent-du-corpus", "missing fact"):
        assert text in report, text
    # Failures first in the per-item table.
    assert report.index("fr-impossible") < report.index("fr-barkhane")
    # Self-contained and escaped.
    assert "http://" not in report and "https://" not in report and "<script" not in report
    assert "&lt;b&gt;exactement&lt;/b&gt;" in report and "<b>exactement</b>" not in report


@pytest.mark.slow
def test_compare_and_a_threshold_that_cannot_be_met(assistant, settings, dataset, tmp_path, capsys):
    out = tmp_path / "compare"
    code = cli(settings, "--dataset", str(dataset), "--out", str(out),
               "--compare", "extractive", "mode=bm25,k=3,name=lexical", "--min-accuracy", "0.99")
    captured = capsys.readouterr()
    assert code == 1
    assert "answer_accuracy" in captured.err and "0.99" in captured.err and "--min-accuracy" in captured.err

    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert [r["name"] for r in results["runs"]] == ["extractive", "lexical", "baseline"]  # baseline always added
    assert results["metrics"] == results["runs"][0]["metrics"]
    lexical = results["runs"][1]["config"]
    assert lexical["retrieval_mode"] == "bm25" and lexical["top_k"] == 3
    baseline = results["runs"][2]
    assert baseline["config"]["engine"] == "llama-index-baseline" and baseline["metrics"]["abstention_rate"] == 0.0
    assert all(len(i["citations"]) == 1 and not i["abstained"] for i in baseline["items"])
    header = captured.out.splitlines()[0]
    assert "extractive" in header and "lexical" in header and "baseline" in header
    report = (out / "report.html").read_text(encoding="utf-8")
    assert "lexical" in report and "autres configurations" in report and "MANQUÉ" in report


def test_bad_dataset_exits_2_with_line_numbers(settings, tmp_path, capsys):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(ITEMS[0]) + "\n{oops\n" + json.dumps({"id": "x"}) + "\n", encoding="utf-8")
    assert cli(settings, "--dataset", str(path)) == 2
    err = capsys.readouterr().err
    assert "line 2" in err and "line 3" in err and "--skip-invalid" in err


def test_duplicate_ids_exit_2(settings, tmp_path, capsys):
    path = tmp_path / "dup.jsonl"
    path.write_text(json.dumps(ITEMS[0]) + "\n" + json.dumps(ITEMS[0]) + "\n", encoding="utf-8")
    assert cli(settings, "--dataset", str(path), "--skip-invalid") == 2
    assert "duplicate id" in capsys.readouterr().err


def test_bad_configuration_exits_2(settings, dataset, capsys):
    assert cli(settings, "--dataset", str(dataset), "--compare", "extractive", "turbo") == 2
    assert "turbo" in capsys.readouterr().err
    assert cli(settings, "--dataset", str(dataset), "--compare", "mode=dense,k=zero") == 2
    assert "entier" in capsys.readouterr().err


def test_threshold_outside_0_1_is_a_usage_error(settings, dataset):
    with pytest.raises(SystemExit) as caught:
        cli(settings, "--dataset", str(dataset), "--min-accuracy", "88")
    assert caught.value.code == 2


def test_config_syntax():
    assert parse_config("extractive") == RunConfig("extractive", False, {"engine": "extractive"})
    assert parse_config("dense").overrides == {"retrieval_mode": "dense", "rerank": False}  # the retriever's own order
    assert parse_config("norerank,rerank=true").overrides == {"rerank": "true"}
    config = parse_config("mode=dense,k=3")
    assert config.name == "mode=dense,k=3" and config.overrides == {"retrieval_mode": "dense", "top_k": 3}
    assert parse_config("bm25,abstain_threshold=0.4,name=strict") == RunConfig(
        "strict", False, {"retrieval_mode": "bm25", "rerank": False, "abstain_threshold": "0.4"})
    assert parse_config("baseline,chunk_size=256") == RunConfig("baseline,chunk_size=256", True, {"chunk_size": 256})
    for bad in ("", "unknown", "k=", "k=0", "baseline,mode=bm25", "chunk_size=100", "index_dir=/tmp"):
        with pytest.raises(ValueError):
            parse_config(bad)
    with pytest.raises(ValueError, match="deux fois"):
        parse_configs(["dense", "dense"])
    assert [c.name for c in ensure_baseline(parse_configs(["extractive", "dense"]))] == ["extractive", "dense", "baseline"]
    assert len(ensure_baseline(parse_configs(["baseline", "dense"]))) == 2
