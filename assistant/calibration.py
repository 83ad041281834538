"""The calibration file: the answer scorer's fitted parameters and the rules' settings, as answering
reads them. It imports nothing of the engines; the fitting is ``fitting.py`` (``assistant calibrate``).

Standardised logistic regressions, stored in one JSON file written by ``assistant calibrate``
(default ``assistant/calibration/default.json``, shipped with the package):

- ``reranker``: P(this retrieved passage holds the question's evidence), which orders the
  retrieved pool before anything is answered (``reranking.py``);
- ``candidate``: P(this sentence or enumeration holds the answer), from the evidence features;
- ``answerable``: P(the corpus answers the question at all), from the best candidate's
  probability and margin and the question-level features (words the corpus never uses, the best
  cosines and coverages).

Beside them: ``threshold`` (the calibrated selector abstains below it), ``gate_threshold`` (the gated
selector withholds the rules' answer below it), ``rules_threshold`` (the rules' score threshold) and
``rules``, the rules' weights, windows and margins that threshold was fitted for
(``selectors/rules.py``). Fitting is deterministic (L-BFGS, no random state) and takes seconds on CPU.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .errors import AssistantError

DEFAULT_CALIBRATION = Path(__file__).resolve().parent / "calibration" / "default.json"
FORMAT = 1


@dataclass(frozen=True)
class Logistic:
    """A standardised logistic regression: P = sigmoid(((x - mean) / scale) . w + b)."""

    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coefficients: tuple[float, ...]
    intercept: float

    def probabilities(self, matrix: np.ndarray) -> np.ndarray:
        z = (np.asarray(matrix, dtype=np.float64) - np.asarray(self.mean)) / np.asarray(self.scale)
        return 1.0 / (1.0 + np.exp(-(z @ np.asarray(self.coefficients) + self.intercept)))

    def to_dict(self) -> dict[str, Any]:
        return {"features": list(self.features), "mean": list(self.mean), "scale": list(self.scale),
                "coefficients": list(self.coefficients), "intercept": self.intercept}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Logistic":
        model = cls(tuple(data["features"]), tuple(map(float, data["mean"])), tuple(map(float, data["scale"])),
                    tuple(map(float, data["coefficients"])), float(data["intercept"]))
        if len({len(model.features), len(model.mean), len(model.scale), len(model.coefficients)}) != 1:
            raise ValueError("sizes differ")
        return model

    @classmethod
    def fit(cls, matrix: np.ndarray, labels: np.ndarray, weights: np.ndarray, features: Sequence[str],
            regularisation: float = 1.0) -> "Logistic":
        from sklearn.linear_model import LogisticRegression

        matrix = np.asarray(matrix, dtype=np.float64)
        mean = matrix.mean(axis=0)
        scale = matrix.std(axis=0)
        scale[scale == 0] = 1.0
        model = LogisticRegression(C=regularisation, max_iter=5000, solver="lbfgs")
        model.fit((matrix - mean) / scale, labels, sample_weight=weights)
        return cls(tuple(features), _round(mean), _round(scale), _round(model.coef_[0]),
                   round(float(model.intercept_[0]), 8))


@dataclass(frozen=True)
class ReaderCalibration:
    """The reader's models (``selectors/reader.py``): which candidate answers, and the probability
    that the answer given is right, with the two thresholds that make it sure, unsure or withheld."""

    candidate: Logistic  # P(this sentence holds the answer), from the evidence and reading features
    confidence: Logistic  # P(the answer given is right), from the question and its best candidate
    sure_threshold: float  # at or above: the sentence alone
    abstain_threshold: float  # below: no answer; between the two: the closest passage, marked unsure
    passages: int = 3  # the reranked passages whose sentences are read
    window_chars: int = 450  # an unsure answer's passage excerpt
    metadata: dict = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"candidate": self.candidate.to_dict(), "confidence": self.confidence.to_dict(),
                "sure_threshold": self.sure_threshold, "abstain_threshold": self.abstain_threshold,
                "passages": self.passages, "window_chars": self.window_chars, "metadata": self.metadata}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ReaderCalibration":
        return cls(Logistic.from_dict(data["candidate"]), Logistic.from_dict(data["confidence"]),
                   float(data["sure_threshold"]), float(data["abstain_threshold"]), int(data.get("passages", 3)),
                   int(data.get("window_chars", 450)), dict(data.get("metadata") or {}))


@dataclass(frozen=True)
class Calibration:
    candidate: Logistic
    answerable: Logistic
    threshold: float  # below this P(answerable) the engine abstains
    metadata: dict = field(default_factory=dict)  # datasets, target, curve, cross-validated numbers
    path: str = ""
    gate_threshold: float = 0.0  # ``answer_scorer = "gated"``: below this, a rules answer is withheld
    reranker: Logistic | None = None  # orders the retrieved passages (``reranking.py``)
    # The rule-based engine's score threshold (setting ``abstain_threshold`` unset): below it, its
    # best sentence is no answer.
    rules_threshold: float | None = None
    # The rules' weights, windows and margins (``selectors.rules.RulesParameters``): set by hand, not
    # fitted, but kept with the threshold fitted for them; ``assistant calibrate`` carries them over.
    rules: dict | None = None
    reader: ReaderCalibration | None = None  # ``answer_scorer = "reader"``

    @property
    def sha256(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()

    def describe(self) -> dict[str, Any]:
        """What an eval's ``config`` records about the scorer in use."""
        return {"path": self.path, "sha256": self.sha256[:16], "threshold": self.threshold,
                "gate_threshold": self.gate_threshold, "rules_threshold": self.rules_threshold,
                **({"reader": {"sure_threshold": self.reader.sure_threshold,
                               "abstain_threshold": self.reader.abstain_threshold}} if self.reader else {}),
                "datasets": [d.get("name") for d in self.metadata.get("datasets", [])],
                "target_false_abstention": self.metadata.get("target_false_abstention")}

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "model": "logistic-regression", "threshold": self.threshold,
                "gate_threshold": self.gate_threshold,
                **({"rules_threshold": self.rules_threshold} if self.rules_threshold is not None else {}),
                **({"rules": dict(self.rules)} if self.rules is not None else {}),
                **({"reader": self.reader.to_dict()} if self.reader is not None else {}),
                "candidate": self.candidate.to_dict(), "answerable": self.answerable.to_dict(),
                **({"reranker": self.reranker.to_dict()} if self.reranker else {}), "metadata": self.metadata}

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(path.suffix + ".tmp")
        temporary.write_text(json.dumps(self.to_dict(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        temporary.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path | None = None) -> "Calibration":
        path = Path(path) if path else DEFAULT_CALIBRATION
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("format") != FORMAT:
                raise ValueError(f"format {data.get('format')!r}")
            return cls(Logistic.from_dict(data["candidate"]), Logistic.from_dict(data["answerable"]),
                       float(data["threshold"]), dict(data.get("metadata") or {}), str(path),
                       float(data.get("gate_threshold", 0.0)),
                       Logistic.from_dict(data["reranker"]) if data.get("reranker") else None,
                       float(data["rules_threshold"]) if data.get("rules_threshold") is not None else None,
                       dict(data["rules"]) if data.get("rules") is not None else None,
                       ReaderCalibration.from_dict(data["reader"]) if data.get("reader") else None)
        except FileNotFoundError as exc:
            raise AssistantError(f"Calibration introuvable : {path}. Lancez `assistant calibrate`.") from exc
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise AssistantError(f"Calibration illisible {path} ({exc}) : relancez `assistant calibrate`.") from exc


def _round(values: np.ndarray) -> tuple[float, ...]:
    return tuple(round(float(v), 8) for v in values)
