"""The shared-format metrics on small hand-made runs (no model needed)."""

import math

import pytest

from evals.dataset import parse_item
from evals.metrics import (METRIC_KEYS, category_accuracy, compute_metrics, contains_evidence, failure_reasons,
                           first_hit_rank, is_correct, percentile, satisfies, token_f1)

BARKHANE = "L’opération Barkhane s’est définitivement retirée du Mali le 15 août 2022 (tout comme Takuba)."
MINUSMA = "Le Conseil de sécurité a mis fin au mandat de la MINUSMA à compter du 30 juin 2023."
OTHER = "En 2013, Interpeace et l’IMRAP ont mené un dialogue national."

ITEMS = [
    parse_item({"id": "a", "question": "Quand Barkhane a-t-elle quitté le Mali ?", "lang": "fr",
                "must_include": [["15 août 2022"]],
                "evidence": ["L'opération Barkhane s'est définitivement retirée du Mali le 15 août 2022"],
                "reference_answer": "Le 15 août 2022."}),
    parse_item({"id": "b", "question": "When did MINUSMA end?", "lang": "en",
                "must_include": [["30 juin 2023", "June 30, 2023"]],
                "evidence": ["mis fin au mandat de la MINUSMA à compter du 30 juin 2023"]}),
    parse_item({"id": "c", "question": "Quel est le budget du programme ?", "answerable": False}),
    parse_item({"id": "d", "question": "Et la fin officielle ?", "must_include": [["2022"]],
                "history": [{"role": "user", "content": "Barkhane ?"}, {"role": "assistant", "content": "2022 [1]"}]}),
]


def result(answer, abstained=False, citations=(), retrieved=(), latency=10.0):
    return {"answer": answer, "abstained": abstained, "latency_ms": latency,
            "citations": [{"number": n, "text": t} for n, t in enumerate(citations, start=1)],
            "retrieved": list(retrieved)}


def perfect_run():
    return [
        result("Le 15 août 2022 [1]", citations=[BARKHANE], retrieved=[BARKHANE, OTHER], latency=10),
        result("Le 30 juin 2023 [1]", citations=[MINUSMA], retrieved=[MINUSMA, OTHER], latency=20),
        result("Je n'ai pas trouvé cette information dans les documents.", abstained=True, latency=30),
        result("Annoncée en novembre 2022 [1]", citations=[BARKHANE], retrieved=[BARKHANE], latency=40),
    ]


def test_metric_keys_are_exactly_the_shared_format():
    metrics = compute_metrics(ITEMS, perfect_run())
    assert tuple(metrics) == METRIC_KEYS
    assert set(METRIC_KEYS) == {"n_items", "hit@1", "hit@3", "hit@5", "mrr", "answer_accuracy", "citation_precision",
                                "citation_recall", "abstention_rate", "false_abstention_rate", "token_f1",
                                "latency_ms_p50", "latency_ms_p95", "latency_ms_max"}


def test_perfect_run():
    m = compute_metrics(ITEMS, perfect_run())
    assert m["n_items"] == 4
    assert m["hit@1"] == m["hit@3"] == m["hit@5"] == m["mrr"] == 1.0
    assert m["answer_accuracy"] == 1.0
    assert m["citation_precision"] == m["citation_recall"] == 1.0
    assert m["abstention_rate"] == 1.0 and m["false_abstention_rate"] == 0.0
    assert m["latency_ms_p50"] == 25.0 and m["latency_ms_p95"] == 40.0 and m["latency_ms_max"] == 40.0
    assert m["token_f1"] == pytest.approx(token_f1("Le 15 août 2022 [1]", "Le 15 août 2022."), abs=1e-4)


def test_all_abstaining_run():
    run = [result("Je n'ai pas trouvé cette information.", abstained=True, retrieved=[OTHER, BARKHANE, MINUSMA])
           for _ in ITEMS]
    m = compute_metrics(ITEMS, run)
    assert m["answer_accuracy"] == 0.0
    assert m["false_abstention_rate"] == 1.0
    assert m["abstention_rate"] == 1.0
    assert m["citation_precision"] is None  # nothing cited: no passage qualifies
    assert m["citation_recall"] == 0.0
    # Retrieval is measured even when the answer abstains.
    assert m["hit@1"] == 0.0 and m["hit@3"] == 1.0 and m["mrr"] == pytest.approx((1 / 2 + 1 / 3) / 2, abs=1e-4)
    assert [is_correct(i, r) for i, r in zip(ITEMS, run)] == [False, False, True, False]


def test_run_citing_the_wrong_passage():
    run = perfect_run()
    run[0] = result("Le 15 août 2022 [1] [2]", citations=[OTHER, BARKHANE], retrieved=[OTHER, BARKHANE])
    run[1] = result("Le 30 juin 2023 [1]", citations=[OTHER], retrieved=[OTHER, MINUSMA])
    m = compute_metrics(ITEMS, run)
    assert m["answer_accuracy"] == 1.0  # the facts are there...
    assert m["citation_precision"] == pytest.approx(1 / 3, abs=1e-4)  # ...but 2 of 3 cited passages hold no evidence
    assert m["citation_recall"] == 0.5
    assert m["hit@1"] == 0.0 and m["mrr"] == 0.5
    assert "cited passage without evidence: [1]" in failure_reasons(ITEMS[1], run[1])


def test_answering_an_unanswerable_question_and_missing_facts():
    run = perfect_run()
    run[2] = result("Le budget est de 3 millions [1]", citations=[OTHER])
    run[0] = result("En 2022 [1]", citations=[BARKHANE], retrieved=[BARKHANE])
    m = compute_metrics(ITEMS, run)
    assert m["abstention_rate"] == 0.0
    assert m["answer_accuracy"] == pytest.approx(2 / 3, abs=1e-4)
    assert failure_reasons(ITEMS[2], run[2]) == ["answered an unanswerable question"]
    assert failure_reasons(ITEMS[0], run[0]) == ['missing fact: ["15 août 2022"]']
    abstained = result("Je ne sais pas.", abstained=True)
    assert "abstained on an answerable question" in failure_reasons(ITEMS[1], abstained)


def test_no_qualifying_item_gives_null():
    items = [parse_item({"id": "x", "question": "Q ?"})]
    m = compute_metrics(items, [result("R", latency=5)])
    assert m["hit@1"] is None and m["mrr"] is None and m["citation_precision"] is None
    assert m["citation_recall"] is None and m["abstention_rate"] is None and m["token_f1"] is None
    assert m["answer_accuracy"] == 1.0  # no must_include: any non-abstaining answer is correct


@pytest.mark.parametrize("prediction, reference, expected", [
    ("le 15 août 2022", "le 15 août 2022", 1.0),
    ("Le 15 AOUT 2022 !", "le 15 août 2022", 1.0),  # case, accents and punctuation ignored
    ("abc", "xyz", 0.0),
    ("le chat noir", "le chat", 0.8),  # p = 2/3, r = 1 -> 2pr/(p+r) = 0.8
    ("a b c d", "a b e f", 0.5),  # p = r = 1/2
    ("the the the", "the cat", 0.4),  # clipped counts: common 1, p = 1/3, r = 1/2
    ("", "", 1.0),
    ("", "quelque chose", 0.0),
])
def test_token_f1_on_known_pairs(prediction, reference, expected):
    assert math.isclose(token_f1(prediction, reference), expected, abs_tol=1e-9)


def test_matching_rules():
    # Evidence: quotes and whitespace normalised, case folded, accents kept.
    assert contains_evidence("L’opération\u00a0 Barkhane  S’EST retirée", ["l'opération barkhane s'est retirée"])
    assert not contains_evidence("L'operation Barkhane", ["L'opération Barkhane"])
    # must_include: accents folded too; any string of a group; every group.
    assert satisfies("Le 15 aout 2022, à Gao", [["15 août 2022"], ["Gao", "Tombouctou"]])
    assert not satisfies("Le 15 août 2022", [["15 août 2022"], ["Gao"]])
    assert satisfies("«Voix des femmes» et “Paix”", [['"voix des femmes"'], ['"paix"']])
    assert first_hit_rank([OTHER, MINUSMA, BARKHANE], ["15 août 2022"]) == 3
    assert first_hit_rank([OTHER], ["15 août 2022"]) is None


def test_percentile_nearest_rank():
    values = list(range(1, 101))
    assert percentile(values, 50) == 50 and percentile(values, 95) == 95 and percentile(values, 100) == 100
    assert percentile([7.0], 95) == 7.0


def test_category_accuracy():
    run = perfect_run()
    run[1] = result("Je ne sais pas", abstained=True)
    cats = category_accuracy(ITEMS, run)
    assert cats["french"] == {"n": 1, "correct": 1, "accuracy": 1.0}
    assert cats["english"] == {"n": 1, "correct": 0, "accuracy": 0.0}
    assert cats["unanswerable"]["accuracy"] == 1.0 and cats["multi-turn"]["accuracy"] == 1.0
