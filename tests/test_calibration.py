"""The calibrated answer scorer: a reproducible fit, abstention on what the corpus never names,
lists kept whole, and the answer span marked inside the quoted sentence. Real model, real index."""

from __future__ import annotations

import json

import pytest

from assistant.answer_types import profile_question
from assistant.calibration import Calibration
from assistant.cli import main
from assistant.evidence import ANSWERABLE_FEATURES, FEATURES, PASSAGE_FEATURES

from .conftest import CORPUS_DIR, DEV_SET


@pytest.fixture(scope="module")
def calibrated(assistant):
    return assistant.variant(answer_scorer="calibrated")


@pytest.mark.slow
def test_calibration_is_reproducible(settings, tmp_path, capsys):
    """Same data, same file: the fit is deterministic, and the file names its data and threshold."""
    outputs = []
    for name in ("first.json", "second.json"):
        out = tmp_path / name
        code = main(["calibrate", "--dataset", str(DEV_SET), "--corpus", str(CORPUS_DIR),
                     "--index", str(settings.index_dir), "--out", str(out)])
        assert code == 0
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]
    loaded = Calibration.load(tmp_path / "first.json")
    assert loaded.candidate.features == FEATURES and loaded.answerable.features == ANSWERABLE_FEATURES
    assert loaded.reranker is not None and loaded.reranker.features == PASSAGE_FEATURES
    # One document: the reranker's folds are of questions, and the file says so.
    assert loaded.metadata["reranking"]["cross_validation"] == "by question (one document only)"
    assert 0.0 <= loaded.threshold < 1.0 and 0.0 <= loaded.gate_threshold < 1.0
    assert loaded.metadata["gate"]["curve"] and loaded.metadata["gate"]["threshold"] == loaded.gate_threshold
    assert [d["name"] for d in loaded.metadata["datasets"]] == ["evals/datasets/dev.jsonl"]
    assert "seuil d'abstention" in capsys.readouterr().out


def test_shipped_calibration_is_recorded_in_the_eval_config(calibrated):
    from evals.compare import assistant_config

    described = assistant_config(calibrated)["calibration"]
    assert described["path"].endswith("default.json") and len(described["sha256"]) == 16
    assert described["datasets"], "the file says which datasets it was fitted on"


@pytest.mark.parametrize("question", [
    "Qui a remporté le championnat de Zorglub Athletic en 1987 ?",
    "Quel est le palmarès du club Olympique Lyonnais ?",
])
def test_question_about_an_entity_the_corpus_never_names_abstains(calibrated, question):
    answer = calibrated.ask(question)
    assert answer.abstained and not answer.citations
    assert answer.confidence is not None and answer.confidence < calibrated.pipeline.context.calibration.threshold


def test_list_question_keeps_its_list(calibrated):
    # A question whose answer is the page's list of current initiatives: quoted whole, one citation.
    answer = calibrated.ask("Quelles sont les initiatives en cours au Mali ?")
    assert not answer.abstained
    items = [line for line in answer.text.splitlines() if line.startswith("- ")]
    assert len(items) >= 3, answer.text
    assert len(answer.citations) == 1 and len(answer.citations[0].highlights) == len(items)


def test_answer_span_is_marked_inside_the_sentence(calibrated):
    answer = calibrated.ask("Quand l’opération Barkhane s’est-elle retirée du Mali ?")
    assert not answer.abstained and len(answer.spans) == 1
    start, end = answer.spans[0]
    marked = answer.text[start:end]
    assert "2022" in marked and len(marked) < 30
    assert f"**{marked}**" in answer.markdown and answer.markdown.replace("**", "") == answer.text
    assert answer.to_dict()["spans"] == [[start, end]]


def test_reranked_passages_put_the_quoted_one_first(calibrated):
    answer = calibrated.ask("Combien de Maliens ont été consultés ?")
    assert not answer.abstained
    assert answer.citations[0].text == answer.retrieved[0].text
    assert len(answer.retrieved) <= calibrated.settings.top_k


@pytest.mark.parametrize("question, expected", [
    ("En quelle année Charlemagne est-il mort ?", "date"),
    ("Combien de régions compte le pays ?", "quantity"),
    ("Qui fut le second successeur de Charlemagne ?", "name"),
    ("Comment s’appelle le fleuve qui traverse la ville ?", "name"),
    ("Quelle est la ville qui accueille le siège ?", "place"),
    ("Quelle est l’adresse e-mail du secrétariat ?", "contact"),
    ("Où se trouve le siège de l'organisation ?", "place"),
    ("Pourquoi la mission a-t-elle pris fin ?", "reason"),
    ("What does the acronym stand for?", None),
])
def test_question_types_come_from_the_wh_phrase(question, expected):
    assert profile_question(question).answer_type == expected


def test_calibration_file_errors_are_clear(tmp_path):
    from assistant.errors import AssistantError

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": 1, "candidate": {}}), encoding="utf-8")
    with pytest.raises(AssistantError, match="calibrate"):
        Calibration.load(bad)
    with pytest.raises(AssistantError, match="introuvable"):
        Calibration.load(tmp_path / "missing.json")


def _sample(dataset: str, answerable: bool, rules_score: float | None):
    """A calibration question; ``rules_score`` None: the rules abstain whatever their threshold."""
    import numpy as np

    from assistant.fitting import Sample

    return Sample(dataset, "id", "g", answerable, np.zeros((1, 1)), np.zeros(1, dtype=bool), rules_score is None,
                  answerable and rules_score is not None, rules_score or 0.0)


def test_rules_and_gate_thresholds_are_chosen_together_within_the_target_on_every_set():
    import numpy as np

    from assistant.fitting import choose_thresholds

    # Set a: four answerable questions the rules answer (scores 0.7 ... 0.95, gate confidences below),
    # two unanswerable ones they answer too: one with a low rules score, one with a low confidence.
    # Set b: an answerable question with a high score and confidence, an unanswerable one the rules
    # already abstain on.
    samples = [_sample("a", True, 0.7), _sample("a", True, 0.8), _sample("a", True, 0.9), _sample("a", True, 0.95),
               _sample("a", False, 0.9), _sample("a", False, 0.6), _sample("b", True, 0.9), _sample("b", False, None)]
    confidence = np.array([0.9, 0.1, 0.9, 0.9, 0.2, 0.9, 0.95, 0.0])
    # Nothing may be lost: the gate stays at or below 0.1 (the answer with confidence 0.1 is kept), the
    # rules' threshold at or below 0.7; above 0.6 it stops the low-scored unanswerable one (abstention 0.5).
    rules, gate, curves = choose_thresholds(samples, confidence, target=0.0)
    assert (rules, gate) == (0.7, 0.1)
    # One answer in four may be lost: the gate withholds the low-confidence one (and the unanswerable
    # question with confidence 0.2), the rules the other unanswerable one: abstention 1.0 on both sets.
    rules, gate, curves = choose_thresholds(samples, confidence, target=0.25)
    assert (rules, gate) == (0.7, 0.9)
    at = {row["threshold"]: row for row in curves["gate"]}[0.9]
    assert at["a"]["abstention"] == 1.0 and at["a"]["added_false_abstention"] == 0.25
    assert at["b"]["added_false_abstention"] == 0.0


def test_gated_answers_are_the_rules_answers_or_abstentions(assistant):
    gated, rules = assistant.variant(answer_scorer="gated"), assistant.variant(answer_scorer="rules")
    questions = [json.loads(line)["question"] for line in DEV_SET.read_text(encoding="utf-8").splitlines()[:25]
                 if line.strip()]
    for question in questions:
        ruled, kept = rules.ask(question), gated.ask(question)
        assert kept.abstained or (kept.text, kept.citations) == (ruled.text, ruled.citations)
        if ruled.abstained:
            assert kept.abstained
    absent = gated.ask("Qui a remporté le championnat de Zorglub Athletic en 1987 ?")
    assert absent.abstained and not absent.citations


def test_rules_threshold_comes_from_the_calibration_unless_set(assistant, tmp_path):
    from assistant.calibration import DEFAULT_CALIBRATION
    from assistant.errors import AssistantError

    shipped = Calibration.load()
    assert assistant.settings.abstain_threshold is None and shipped.rules_threshold is not None
    assert assistant.variant(answer_scorer="rules").describe()["selector"]["abstain_threshold"] == shipped.rules_threshold
    assert assistant.variant(answer_scorer="rules", abstain_threshold=0.5).describe()["selector"]["abstain_threshold"] == 0.5
    data = json.loads(DEFAULT_CALIBRATION.read_text(encoding="utf-8"))
    del data["rules_threshold"]
    older = tmp_path / "older.json"
    older.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(AssistantError, match="calibrate"):
        assistant.variant(answer_scorer="rules", calibration=str(older))
