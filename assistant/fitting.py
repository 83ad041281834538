"""Fitting the calibration file (``assistant calibrate``): each calibration question through the
real pipeline, its candidates' features labelled by the eval format's matching rules, the
logistic models fitted with cross-validation grouped by document, and the thresholds chosen on
out-of-fold predictions for stated targets. Deterministic. Answering never imports this module:
it reads the file through ``calibration.py``.

The datasets arrive parsed (items with ``id``, ``question``, ``answerable``, ``must_include``,
``evidence``, ``history``): reading the eval format is the ``evals`` package's, which registers the
``calibrate`` command and calls ``calibrate`` below.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from .calibration import Calibration, Logistic, ReaderCalibration
from .chat import FollowUpRewriter
from .config import PROJECT_ROOT, Settings, for_corpus
from .context import PipelineContext
from .embeddings import Embedder, sha256_file
from .engines.compose import compose, extractive_pieces
from .errors import AssistantError
from .evidence import ANSWERABLE_FEATURES, FEATURES, PASSAGE_FEATURES, EvidenceScorer, answerable_row
from .index import ensure_index
from .reading import shared_pipeline
from .reranking import Reranker
from .selectors.reader import (CANDIDATE_FEATURES, CONFIDENCE_FEATURES, ReaderAnalysis, analyse, confidence_row,
                               quote_budget, window)
from .retrieval import Retriever
from .selectors.rules import rules_selector
from .text import normalize_for_match


@dataclass
class Sample:
    """One calibration question: its candidates' features and which of them hold the answer."""

    dataset: str
    item_id: str
    group: str  # questions of one document (per dataset) stay in one cross-validation fold
    answerable: bool
    matrix: np.ndarray
    labels: np.ndarray
    rules_abstained: bool = True  # what the rule-based engine did with the question (no score threshold)
    rules_correct: bool = False
    rules_score: float = 0.0  # the score of what it quoted first (its threshold is fitted on it)
    reader: "ReaderSample | None" = None  # the reader's candidates (first passages), when collected


@dataclass
class ReaderSample:
    """The reader's view of one calibration question: its candidates (of the first reranked
    passages) with their features, labels, texts and passages, and how to judge a composed answer."""

    matrix: np.ndarray  # rows in CANDIDATE_FEATURES order
    labels: np.ndarray
    passage_ranks: list[int]
    texts: list[str]
    chunks: list[str]
    is_list: list[bool]
    holds_answer: Callable[[str], bool]


class _Outcomes:
    """What the rule-based engine did with each calibration question, per dataset, as arrays."""

    def __init__(self, samples: list[Sample], confidence: np.ndarray) -> None:
        self.sets = {}
        for name in dict.fromkeys(s.dataset for s in samples):
            members = [i for i, s in enumerate(samples) if s.dataset == name]
            self.sets[name] = (np.array([samples[i].answerable for i in members]),
                               np.array([not samples[i].rules_abstained for i in members]),
                               np.array([samples[i].rules_score for i in members]), confidence[members],
                               np.array([samples[i].rules_correct for i in members]))

    def at(self, rules_threshold: float, gate_threshold: float) -> dict[str, dict]:
        """Per dataset, with the rules' score threshold and the gate's: abstention, false abstention,
        the false abstention added to the rules without a threshold, accuracy."""
        out = {}
        for name, (yes, answered, score, confidence, correct) in self.sets.items():
            kept = answered & (score >= rules_threshold) & (confidence >= gate_threshold)
            out[name] = {"abstention": _share(list(~kept[~yes])), "false_abstention": _share(list(~kept[yes])),
                         "added_false_abstention": _share(list(answered[yes] & ~kept[yes])),
                         "accuracy": _share(list(kept[yes] & correct[yes]))}
        return out


def choose_thresholds(samples: list[Sample], confidence: np.ndarray, target: float) -> tuple[float, float, dict]:
    """The rule-based engine's score threshold and the gate's, chosen together: among the pairs
    that add at most ``target`` false abstention to the rules without a threshold on every dataset
    (gate confidences out of fold), the one abstaining most on unanswerable questions (mean over the
    datasets that have some), then the highest thresholds; and the curves through that pair."""
    outcomes = _Outcomes(samples, confidence)
    rules_grid = [round(t, 3) for t in np.arange(0.5, 1.0, 0.005)]
    gate_grid = [round(t, 3) for t in np.arange(0.0, 1.0, 0.01)]

    def fits(rows: dict[str, dict]) -> bool:
        return all((v["added_false_abstention"] or 0.0) <= target for v in rows.values())

    def abstention(rows: dict[str, dict]) -> float:
        values = [v["abstention"] for v in rows.values() if v["abstention"] is not None]
        return float(np.mean(values)) if values else 0.0

    best = (0.0, 0.5, 0.0)
    for rules_threshold in rules_grid:
        for gate_threshold in gate_grid:
            rows = outcomes.at(rules_threshold, gate_threshold)
            if not fits(rows):
                break  # a higher gate only withholds more
            best = max(best, (round(abstention(rows), 6), rules_threshold, gate_threshold),
                       key=lambda b: (b[0], b[2], b[1]))
    _, rules_threshold, gate_threshold = best
    curves = {"rules": [{"threshold": t, **outcomes.at(t, gate_threshold)}
                        for t in rules_grid if round(t * 1000) % 10 == 0],
              "gate": [{"threshold": t, **outcomes.at(rules_threshold, t)}
                       for t in gate_grid if round(t * 100) % 5 == 0]}
    return rules_threshold, gate_threshold, curves


def choose_threshold(samples: list[Sample], confidence: np.ndarray, target: float) -> float:
    """The highest threshold whose false abstention, over all answerable calibration questions
    (out of fold), stays within ``target``."""
    answerable = np.array([confidence[i] for i, s in enumerate(samples) if s.answerable])
    grid = [round(t, 3) for t in np.arange(0.0, 1.0, 0.005)]
    return max((t for t in grid if np.mean(answerable < t) <= target), default=0.0)


def curve(samples: list[Sample], confidence: np.ndarray, correct: np.ndarray) -> dict[str, list[dict]]:
    """Per dataset, what each threshold gives (out-of-fold): abstention, false abstention, accuracy."""
    out: dict[str, list[dict]] = {}
    for name in dict.fromkeys(s.dataset for s in samples):
        members = [i for i, s in enumerate(samples) if s.dataset == name]
        answerable = [i for i in members if samples[i].answerable]
        absent = [i for i in members if not samples[i].answerable]
        rows = []
        for t in [round(x, 2) for x in np.arange(0.05, 1.0, 0.05)]:
            rows.append({"threshold": t,
                         "abstention": _share([confidence[i] < t for i in absent]),
                         "false_abstention": _share([confidence[i] < t for i in answerable]),
                         "accuracy": _share([confidence[i] >= t and correct[i] for i in answerable])})
        out[name] = rows
    return out


def _share(flags: list[bool]) -> float | None:
    return round(float(np.mean(flags)), 4) if flags else None


def _fold_probabilities(matrix: np.ndarray, labels: np.ndarray, weights: np.ndarray, test: np.ndarray,
                        features: Sequence[str]) -> np.ndarray:
    """A fold's predictions; a fold whose training part holds one class only (a one-document set)
    predicts that class's share."""
    if len(set(labels.tolist())) < 2:
        return np.full(len(test), float(labels.mean()) if len(labels) else 0.0)
    return Logistic.fit(matrix, labels, weights, features).probabilities(test)


def _question_weights(datasets: Sequence[str]) -> np.ndarray:
    """A dataset weighs as the square root of its size: a small hand-written set still counts
    (92 questions weigh as 460), without drowning a large one."""
    sizes = Counter(datasets)
    weights = np.array([sizes[name] ** -0.5 for name in datasets])
    return weights * len(weights) / weights.sum()


def _folds(groups: Sequence[str], folds: int) -> np.ndarray:
    """Each question's cross-validation fold; the questions of one group (document) share one."""
    from sklearn.model_selection import GroupKFold  # slow to import: only when fitting

    fold_of = np.zeros(len(groups), dtype=int)
    splitter = GroupKFold(n_splits=min(folds, len(set(groups))))
    for k, (_, test) in enumerate(splitter.split(np.zeros(len(groups)), groups=list(groups))):
        fold_of[test] = k
    return fold_of


@dataclass
class PassageSample:
    """One calibration question for the reranker: its retrieved pool (in retrieval order) and
    which passages hold one of its evidence excerpts."""

    dataset: str
    item_id: str
    group: str
    matrix: np.ndarray
    labels: np.ndarray


def fit_reranker(samples: list[PassageSample], folds: int = 5) -> tuple[Logistic, dict[str, Any]]:
    """The passage model, and hit@1 per dataset before and after reranking, out of fold
    (deterministic). Questions whose pool holds no evidence teach nothing and only count as misses."""
    usable = [s for s in samples if s.labels.any() and len(s.labels) > 1]
    if len(usable) < 2:
        raise AssistantError("Trop peu de questions avec des extraits de preuve (evidence) dont un passage "
                             "retrouvé contient la preuve : impossible d'ajuster le reclassement.")
    groups = [s.group for s in usable]
    grouping = "by document within a dataset"
    if len(set(groups)) < 2:  # one document: folds of questions (optimistic, and said so)
        groups, grouping = [f"{s.dataset}::{s.item_id}" for s in usable], "by question (one document only)"
    question_weight = _question_weights([s.dataset for s in usable])
    matrix = np.vstack([s.matrix for s in usable])
    labels = np.concatenate([s.labels for s in usable]).astype(int)
    owner = np.concatenate([[i] * len(s.labels) for i, s in enumerate(usable)])
    weights = question_weight[owner]
    fold_of = _folds(groups, folds)
    out_of_fold = np.zeros(len(labels))
    for k in range(fold_of.max() + 1):
        train, test = fold_of[owner] != k, fold_of[owner] == k
        out_of_fold[test] = _fold_probabilities(matrix[train], labels[train], weights[train], matrix[test],
                                                PASSAGE_FEATURES)
    reranked_first = {(s.dataset, s.item_id): bool(s.labels[int(np.argmax(out_of_fold[owner == i]))])
                      for i, s in enumerate(usable)}
    report = {}
    for name in dict.fromkeys(s.dataset for s in samples):
        members = [s for s in samples if s.dataset == name]
        report[name] = {"questions_with_evidence": len(members),
                        "hit@1_retrieval": _share([bool(len(s.labels)) and bool(s.labels[0]) for s in members]),
                        "hit@1_reranked": _share([reranked_first.get((s.dataset, s.item_id), False) for s in members]),
                        "hit@pool": _share([bool(s.labels.any()) for s in members])}
    model = Logistic.fit(matrix, labels, weights, PASSAGE_FEATURES)
    return model, {"folds": int(fold_of.max() + 1), "cross_validation": grouping, "passages": int(len(labels)),
                   "positives": int(labels.sum()), "out_of_fold": report}


class _Answerability:
    """The candidate model out of fold, then the answerability model out of fold on its scores:
    every question scored by models that never saw its document (what ``fit_calibration`` fits
    and chooses thresholds on, and what the reader's abstention starts from)."""

    def __init__(self, samples: list[Sample], folds: int) -> None:
        self.question_weight = _question_weights([s.dataset for s in samples])
        self.matrix = np.vstack([s.matrix for s in samples])
        self.labels = np.concatenate([s.labels for s in samples]).astype(int)
        owner = np.concatenate([[i] * len(s.labels) for i, s in enumerate(samples)])
        self.weights = self.question_weight[owner]
        self.fold_of = fold_of = _folds([s.group for s in samples], folds)
        out_of_fold = np.zeros(len(self.labels))
        for k in range(fold_of.max() + 1):
            train, test = fold_of[owner] != k, fold_of[owner] == k
            out_of_fold[test] = _fold_probabilities(self.matrix[train], self.labels[train], self.weights[train],
                                                    self.matrix[test], FEATURES)
        self.rows = np.vstack([answerable_row(self.matrix[owner == i], out_of_fold[owner == i])
                               for i in range(len(samples))])
        self.answerable = np.array([s.answerable for s in samples], dtype=int)
        self.correct = np.array([bool(s.labels[int(np.argmax(out_of_fold[owner == i]))])
                                 for i, s in enumerate(samples)])
        self.confidence = np.zeros(len(samples))
        for k in range(fold_of.max() + 1):
            train, test = fold_of != k, fold_of == k
            self.confidence[test] = _fold_probabilities(self.rows[train], self.answerable[train],
                                                        self.question_weight[train], self.rows[test],
                                                        ANSWERABLE_FEATURES)


def gated_answers(kept: list[Sample], calibration: Calibration, confidence: np.ndarray) -> dict[tuple[str, str], bool]:
    """Per question (dataset, id) of ``kept`` (the questions with candidates): did the gated selector
    answer (the rules without a threshold answered, their score reached ``rules_threshold`` and the
    out-of-fold answerability ``confidence`` the ``gate_threshold``)?"""
    return {(s.dataset, s.item_id): bool(not s.rules_abstained and s.rules_score >= (calibration.rules_threshold or 0.0)
                                         and c >= calibration.gate_threshold)
            for s, c in zip(kept, confidence)}


def fit_calibration(samples: list[Sample], target_false_abstention: float = 0.06, folds: int = 5,
                    metadata: dict | None = None, gate_target: float = 0.04,
                    reranker: Logistic | None = None, rules: dict | None = None,
                    answerability: _Answerability | None = None) -> Calibration:
    """Both models, the thresholds, and out-of-fold numbers, from the samples (deterministic);
    ``answerability``: the out-of-fold models of these samples when already fitted."""
    samples = [s for s in samples if len(s.labels)]
    datasets = list(dict.fromkeys(s.dataset for s in samples))
    fitted = answerability if answerability is not None else _Answerability(samples, folds)
    question_weight, matrix, labels, weights = fitted.question_weight, fitted.matrix, fitted.labels, fitted.weights
    rows, answerable, correct, confidence = fitted.rows, fitted.answerable, fitted.correct, fitted.confidence
    fold_of = fitted.fold_of
    threshold = choose_threshold(samples, confidence, target_false_abstention)
    rules_threshold, gate_threshold, curves = choose_thresholds(samples, confidence, gate_target)
    candidate = Logistic.fit(matrix, labels, weights, FEATURES)
    # The answerability model learns from out-of-fold candidate scores, as it will meet them on new questions.
    answer_model = Logistic.fit(rows, answerable, question_weight, ANSWERABLE_FEATURES)
    measured = curve(samples, confidence, correct)
    at_threshold = {}
    for name in datasets:
        members = [i for i, s in enumerate(samples) if s.dataset == name]
        yes = [i for i in members if samples[i].answerable]
        no = [i for i in members if not samples[i].answerable]
        at_threshold[name] = {
            "questions": len(members),
            "best_candidate_correct": _share([correct[i] for i in yes]),
            "accuracy": _share([confidence[i] >= threshold and correct[i] for i in yes]),
            "abstention": _share([confidence[i] < threshold for i in no]),
            "false_abstention": _share([confidence[i] < threshold for i in yes]),
        }
    info = dict(metadata or {})
    info.update({"target_false_abstention": target_false_abstention, "folds": int(fold_of.max() + 1),
                 "cross_validation": "grouped by document within a dataset: no question is scored by a model "
                                     "that saw its document through the same dataset",
                 "out_of_fold_at_threshold": at_threshold, "curve": measured,
                 "candidates": int(len(labels)), "positives": int(labels.sum()),
                 "gate": {"target_added_false_abstention": gate_target, "threshold": gate_threshold,
                          "rules_threshold": rules_threshold,
                          "rule": "the rules' score threshold and the gate's threshold together add at most the "
                                  "target to the false abstention of the rules without a threshold, on every "
                                  "dataset (gate out of fold); among such pairs the most abstention on unanswerable "
                                  "questions (mean over datasets), then the highest thresholds",
                          "curve": curves["gate"], "rules_curve": curves["rules"]}})
    return Calibration(candidate, answer_model, threshold, info, gate_threshold=gate_threshold, reranker=reranker,
                       rules_threshold=rules_threshold, rules=rules)


def reader_window(sample: ReaderSample, probabilities: np.ndarray, budget: int) -> str:
    """An unsure answer's quote: the best candidate and the next likeliest single sentences of its
    passage, within ``budget`` characters (as ``selectors/reader.py`` composes it; order does not
    matter for the containment check)."""
    order = [int(i) for i in np.argsort(-probabilities, kind="stable")]
    members = window(order, sample.chunks, sample.is_list, [len(t) for t in sample.texts], budget)
    return " ".join(sample.texts[j] for j in members)


def fit_reader(samples: list[Sample], gated: dict[tuple[str, str], bool] | None = None, folds: int = 5,
               sure_target: float = 0.90, added_false_abstention: float = 0.02, passages: int = 3,
               window_chars: int = 450) -> ReaderCalibration:
    """The reader's candidate model, its confidence model (P(the answer given is right), questions
    about absent documents counted as wrong) and both thresholds, from out-of-fold predictions
    (folds grouped by document). ``sure_threshold``: the lowest whose answers at or above it are
    right for at least ``sure_target`` of them (questions about absent documents counted wrong).
    Below it, the reader answers what the gated selector answers (``gated``: per question, did it?)
    and withholds more below ``abstain_threshold``: among the thresholds adding at most
    ``added_false_abstention`` false abstention on every dataset, the one abstaining most on
    unanswerable questions (mean over datasets), then the lowest."""
    usable = [s for s in samples if s.reader is not None and len(s.reader.labels)]
    if len(usable) < 10:
        raise AssistantError("Trop peu de questions pour ajuster le modèle de lecture (reader).")
    readers = [s.reader for s in usable]
    question_weight = _question_weights([s.dataset for s in usable])
    matrix = np.vstack([r.matrix for r in readers])
    labels = np.concatenate([r.labels for r in readers]).astype(int)
    owner = np.concatenate([[i] * len(r.labels) for i, r in enumerate(readers)])
    fold_of = _folds([s.group for s in usable], folds)
    out_of_fold = np.zeros(len(labels))
    for k in range(fold_of.max() + 1):
        train, test = fold_of[owner] != k, fold_of[owner] == k
        out_of_fold[test] = _fold_probabilities(matrix[train], labels[train], question_weight[owner][train],
                                                matrix[test], CANDIDATE_FEATURES)
    probabilities = [out_of_fold[owner == i] for i in range(len(usable))]
    rows = np.vstack([confidence_row(ReaderAnalysis([], [], r.matrix, r.passage_ranks), p)
                      for r, p in zip(readers, probabilities)])
    best = [int(np.argmax(p)) for p in probabilities]
    right = np.array([s.answerable and bool(r.labels[b]) for s, r, b in zip(usable, readers, best)], dtype=int)
    confidence = np.zeros(len(usable))
    for k in range(fold_of.max() + 1):
        train, test = fold_of != k, fold_of == k
        confidence[test] = _fold_probabilities(rows[train], right[train], question_weight[train], rows[test],
                                               CONFIDENCE_FEATURES)
    answerable = np.array([s.answerable for s in usable])
    gate = np.array([True if gated is None else gated.get((s.dataset, s.item_id), True) for s in usable])
    names = list(dict.fromkeys(s.dataset for s in usable))
    in_set = {name: np.array([s.dataset == name for s in usable]) for name in names}
    grid = [round(t, 3) for t in np.arange(0.0, 1.0, 0.005)]

    sure = next((t for t in grid if (confidence >= t).any() and right[confidence >= t].mean() >= sure_target), 1.0)

    def answers(t: float) -> np.ndarray:
        return (gate & (confidence >= t)) | (confidence >= sure)

    def added(t: float) -> float:
        return max(float(np.mean((gate & ~answers(t))[in_set[n] & answerable])) for n in names
                   if (in_set[n] & answerable).any())

    def abstention(t: float) -> float:
        values = [float(np.mean(~answers(t)[in_set[n] & ~answerable])) for n in names
                  if (in_set[n] & ~answerable).any()]
        return float(np.mean(values)) if values else 0.0

    allowed = [t for t in grid if t <= sure and added(t) <= added_false_abstention]
    abstain = max(allowed, key=lambda t: (abstention(t), -t)) if allowed else 0.0
    answered = answers(abstain)
    budget = quote_budget(window_chars, "fr")  # the calibration sets are French
    window_right = np.array([s.answerable and r.holds_answer(reader_window(r, p, budget))
                             for s, r, p in zip(usable, readers, probabilities)])
    report = {}
    for name in names:
        members = in_set[name]
        yes, no = members & answerable, members & ~answerable
        is_sure, is_unsure = answered & (confidence >= sure), answered & (confidence < sure)
        given = members & answered
        # Risk against coverage: the answers given, surest first, then the withheld ones.
        order = np.lexsort((-confidence[members], ~answered[members]))
        risks = 1 - np.cumsum(right[members][order]) / np.arange(1, members.sum() + 1)
        report[name] = {
            "questions": int(members.sum()),
            "best_candidate_correct": _share(list(right[yes].astype(bool))),
            "accuracy": _share(list((is_sure & right.astype(bool) | is_unsure & window_right)[yes])),
            "sure_coverage": _share(list(is_sure[yes])),
            "sure_precision": _share(list(right[members & is_sure].astype(bool))),
            "unsure_share": _share(list(is_unsure[given])),
            "abstention": _share(list(~answered[no])),
            "false_abstention": _share(list(~answered[yes])),
            "aurc": round(float(risks.mean()), 4),
        }
    candidate = Logistic.fit(matrix, labels, question_weight[owner], CANDIDATE_FEATURES)
    confidence_model = Logistic.fit(rows, right, question_weight, CONFIDENCE_FEATURES)
    return ReaderCalibration(candidate, confidence_model, sure, abstain, passages, window_chars, {
        "sure_target": sure_target, "added_false_abstention": added_false_abstention,
        "abstention": "below sure_threshold: the gated selector's, then below abstain_threshold",
        "cross_validation": "grouped by document within a dataset", "out_of_fold": report,
        "label": "the answer given (its best candidate) holds the annotated span; absent questions are wrong"})


class _Labeller:
    """An item's labels by the eval format's matching rules, and its cross-validation group: the
    document its evidence is in, per dataset; questions about absent documents: ten groups of
    consecutive questions. Two datasets on one corpus keep separate groups: grouped by corpus
    document, the programme page's two sets (one document) are each scored by models that never saw
    that page, and the gate, fitted on piaf-dev's articles alone, then withheld 45 and 81 % of their
    right answers: the answerability model does not carry over from encyclopaedic articles to that
    page, and no threshold would pass. Their out-of-fold numbers are therefore optimistic."""

    def __init__(self, dataset: str, items: Sequence[Any], chunks: Sequence[Any]) -> None:
        self.dataset, self.normalize = dataset, normalize_for_match
        self.chunks = [(c.document, normalize_for_match(c.text)) for c in chunks]
        self.absent = {item.id: n for n, item in enumerate(i for i in items if not i.answerable)}

    def holds_answer(self, item: Any, text: str) -> bool:
        """``text`` satisfies every ``must_include`` group."""
        folded = self.normalize(text, fold=True)
        return item.answerable and bool(item.must_include) and all(
            any(self.normalize(s, fold=True) in folded for s in group) for group in item.must_include)

    def holds_evidence(self, item: Any, text: str) -> bool:
        normalized = self.normalize(text)
        return any(self.normalize(e) in normalized for e in item.evidence)

    def group(self, item: Any) -> str:
        if item.answerable:
            evidence = [self.normalize(e) for e in item.evidence]
            found = next((document for document, text in self.chunks if any(e in text for e in evidence)), None)
            return f"{self.dataset}::{found if found is not None else item.id}"
        return f"{self.dataset}::absent-{self.absent[item.id] * 10 // max(len(self.absent), 1)}"


def collect_passages(name: str, items: Sequence[Any], retriever: Any, rewriter: Any, scorer: Any,
                     pool: int, progress: Callable[[Iterable], Iterable] = lambda it: it) -> list[PassageSample]:
    """The reranker's samples: each answerable item with evidence, its pool in retrieval order."""
    labeller = _Labeller(name, items, scorer.index.chunks)
    samples = []
    for item in progress(items):
        if not (item.answerable and item.evidence):
            continue
        query = rewriter.rewrite(item.question, [dict(t) for t in item.history])
        passages = retriever.retrieve(query, pool)
        labels = np.array([labeller.holds_evidence(item, p.text) for p in passages], dtype=bool)
        samples.append(PassageSample(name, item.id, labeller.group(item),
                                     scorer.passage_features(item.question, query, passages), labels))
    return samples


def collect_samples(name: str, items: Sequence[Any], retriever: Any, rewriter: Any, scorer: Any,
                    pool: int, progress: Callable[[Iterable], Iterable] = lambda it: it,
                    rules: Any = None, top_k: int = 5, reranker: Any = None, reading: Any = None,
                    read_passages: int = 3) -> list[Sample]:
    """Each item through the real pipeline (follow-up rewrite, retrieval, reranking when given,
    candidates), labelled: a candidate holds the answer when its text satisfies every
    ``must_include`` group (the eval format's matching rule). With ``rules`` (the rule-based
    engine, given without a score threshold), what it answers from the first ``top_k`` passages and the
    score of what it quotes first are recorded too, for its threshold and the gate. With ``reading``
    (the language pipeline), the reader's candidates of the first ``read_passages`` passages too."""
    labeller = _Labeller(name, items, scorer.index.chunks)
    samples = []
    for item in progress(items):
        query = rewriter.rewrite(item.question, [dict(t) for t in item.history])
        passages = retriever.retrieve(query, pool)
        if reranker is not None:
            passages = reranker.rerank(item.question, query, passages)
        units, _, matrix, _ = scorer.features(item.question, query, passages)
        labels = np.array([labeller.holds_answer(item, " ".join(x.text for x in unit)) for unit in units], dtype=bool)
        first, text = None, ""
        if rules is not None:  # what the rules quote first, and their answer (as the engine composes it)
            selection = rules.select(item.question, query, passages[:top_k])
            if selection.units:  # the first is what it quotes first
                first = selection.units[0]
                text = compose(selection, extractive_pieces(list(selection.units)), rules.name, 0.0).text
        read = None
        if reading is not None:
            analysis = analyse(scorer, reading, item.question, query, passages, read_passages)
            texts = [" ".join(x.text for x in unit) for unit in analysis.units]
            read = ReaderSample(analysis.matrix, np.array([labeller.holds_answer(item, t) for t in texts], dtype=bool),
                                analysis.passage_ranks, texts, [o.chunk_id for o in analysis.owners],
                                [len(unit) > 1 for unit in analysis.units], partial(labeller.holds_answer, item))
        samples.append(Sample(name, item.id, labeller.group(item), item.answerable, matrix, labels,
                              first is None, first is not None and labeller.holds_answer(item, text),
                              first.score if first is not None else 0.0, read))
    return samples


@dataclass(frozen=True)
class CalibrationSet:
    """A parsed dataset and the corpus its questions are about."""

    path: Path
    items: Sequence[Any]
    corpus: Path


Progress = Callable[[str, int], Callable[[Iterable], Iterable]]  # (label, total) -> a progress wrapper


def calibrate(settings: Settings, sets: Sequence[CalibrationSet], target_false_abstention: float = 0.06,
              gate_target: float = 0.04, progress: Progress = lambda label, total: (lambda it: it)) -> Calibration:
    """The body of ``assistant calibrate``: the reranker fitted first, on the pools as retrieval
    orders them; then the answer scorer, the gate and the rules' threshold, on the pools as the
    reranker orders them (as they will meet them). The rules' parameters are carried over from the
    calibration in use (``settings.calibration``, else the shipped file)."""
    embedder = Embedder.from_settings(settings)
    rules = Calibration.load(settings.calibration or None).rules
    sources, datasets = [], []
    for dataset in sets:
        local = for_corpus(settings, dataset.corpus)
        index = ensure_index(local, embedder, show_progress=True)
        retriever = Retriever(index, embedder, mode=local.retrieval_mode, fusion=local.fusion, rrf_k=local.rrf_k,
                              dense_weight=local.dense_weight, candidate_pool=local.candidate_pool)
        name = os.path.relpath(dataset.path.resolve(), PROJECT_ROOT)
        sources.append((name, dataset, local, index, retriever, EvidenceScorer(index, embedder, None)))
        datasets.append({"name": name, "sha256": sha256_file(dataset.path), "items": len(dataset.items),
                         "answerable": sum(1 for i in dataset.items if i.answerable),
                         "corpus": os.path.relpath(dataset.corpus.resolve(), PROJECT_ROOT),
                         "documents": index.manifest["documents"]})
    passage_samples = []
    for name, dataset, local, _, retriever, scorer in sources:
        passage_samples += collect_passages(name, dataset.items, retriever, FollowUpRewriter(), scorer,
                                            local.candidate_pool,
                                            progress(f"{dataset.path.name} (passages)", len(dataset.items)))
    reranker_model, reranking = fit_reranker(passage_samples)
    samples = []
    for name, dataset, local, index, retriever, scorer in sources:
        # The rules without a score threshold: the one they need is fitted here.
        context = PipelineContext(local.with_overrides(abstain_threshold=0.0), index, embedder)
        samples += collect_samples(name, dataset.items, retriever, FollowUpRewriter(), scorer, local.candidate_pool,
                                   progress(f"{dataset.path.name} (phrases)", len(dataset.items)),
                                   rules=rules_selector(context), top_k=local.top_k,
                                   reranker=Reranker(scorer, reranker_model), reading=shared_pipeline())
    kept = [s for s in samples if len(s.labels)]
    answerability = _Answerability(kept, folds=5)  # fitted once: for the gate and for the reader's abstention
    calibration = fit_calibration(kept, target_false_abstention, answerability=answerability, metadata={
        "datasets": datasets, "candidate_pool": settings.candidate_pool, "embedding_model": settings.embedding_model,
        "embedding_backend": settings.embedding_backend, "chunk_target_tokens": settings.chunk_target_tokens,
        "reranking": reranking,
        "weighting": "a dataset weighs as the square root of its number of questions"}, gate_target=gate_target,
        reranker=reranker_model, rules=rules)
    return replace(calibration, reader=fit_reader(samples, gated_answers(kept, calibration, answerability.confidence)))
