"""The reader (``answer_scorer = "reader"``): spaCy's French pipeline read against the question,
the candidate chosen and graded (sure / unsure / abstained) by models fitted by
``assistant calibrate``. Real model, real spaCy pipeline, a real index of a small note."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

from assistant import Assistant
from assistant.calibration import Calibration
from assistant.language import pack

NOTE = """# Note de l'atelier de Mopti

## Atelier

L'atelier de dialogue s'est tenu à Mopti le 12 mars 2024. La session a été animée par Aminata Traoré à Mopti. Trente-deux participants y ont pris part, venus de six communes.

## Radio

La radio de Gao diffuse l'émission Paroles de paix chaque mardi soir. Les auditeurs appellent pendant une heure pour poser leurs questions aux invités.

## Financement

Le budget annuel du programme atteint 240 millions de francs CFA. Il est financé principalement par la coopération suisse.
"""


@pytest.fixture(scope="module")
def reader(tmp_path_factory, settings):
    folder = tmp_path_factory.mktemp("reader")
    (folder / "corpus").mkdir()
    (folder / "corpus" / "note.md").write_text(NOTE, encoding="utf-8")
    local = settings.with_overrides(corpus_dir=folder / "corpus", index_dir=folder / "index", answer_scorer="reader")
    return Assistant.load(settings=local)


pytestmark = pytest.mark.slow


def _marked(answer) -> list[str]:
    return [answer.text[a:b] for a, b in answer.spans]


def test_a_who_question_answers_the_person_not_the_place(reader):
    answer = reader.ask("Qui a animé la session de l'atelier ?")
    assert not answer.abstained and "Aminata Traoré" in answer.text and answer.certainty in {"sure", "unsure"}
    if answer.certainty == "sure":
        assert _marked(answer) == ["Aminata Traoré"]


def test_a_who_question_without_a_person_near_its_words_is_not_answered_surely(reader):
    answer = reader.ask("Qui a fondé la radio de Gao ?")
    assert answer.certainty in {"abstained", "unsure"}
    assert answer.abstained or answer.text.startswith(pack("fr").strings["unsure"])


def test_which_day_is_answered_by_a_weekday(reader):
    answer = reader.ask("Quel jour la radio de Gao diffuse-t-elle Paroles de paix ?")
    assert not answer.abstained and "mardi" in answer.text
    if answer.certainty == "sure":
        assert _marked(answer) == ["mardi"]


def test_a_question_naming_an_entity_absent_from_the_corpus_abstains(reader):
    answer = reader.ask("Qui est le maire actuel de Lyon ?")
    assert answer.abstained and answer.certainty == "abstained" and not answer.citations
    assert answer.confidence is not None and answer.confidence < reader.pipeline.context.calibration.reader.abstain_threshold


def test_and_then_continues_after_the_previous_answer(reader):
    first = reader.ask("Quand l'atelier de dialogue s'est-il tenu à Mopti ?")
    assert "12 mars 2024" in first.text
    history = [{"role": "user", "content": first.question}, {"role": "assistant", "content": first.text}]
    following = reader.ask("Et ensuite ?", history)
    assert "Aminata Traoré" in following.text and "12 mars" not in following.text
    assert following.citations and following.citations[0].quotes == ["La session a été animée par Aminata Traoré à Mopti."]
    again = reader.ask("Et ensuite ?", [*history, {"role": "user", "content": "Et ensuite ?"},
                                        {"role": "assistant", "content": following.text}])
    assert "Trente-deux participants" in again.text


def test_the_unsure_form_is_at_most_450_characters_with_the_likely_sentence_marked(reader, tmp_path):
    calibration = reader.pipeline.context.calibration
    always_unsure = replace(calibration, reader=replace(calibration.reader, sure_threshold=1.01, abstain_threshold=0.0))
    path = always_unsure.save(tmp_path / "unsure.json")
    unsure = reader.variant(calibration=str(path))
    answer = unsure.ask("Combien de participants ont pris part à l'atelier ?")
    prefix = pack("fr").strings["unsure"]
    assert answer.certainty == "unsure" and answer.text.startswith(prefix)
    quoted = answer.text[len(prefix):].rsplit("[", 1)[0].strip(" «»")
    assert 0 < len(quoted) and len(answer.text) <= 450 and len(answer.spans) == 1
    assert answer.text[answer.spans[0][0]:answer.spans[0][1]] in quoted
    assert answer.to_dict()["certainty"] == "unsure"


def test_the_reader_fit_is_reproducible_byte_for_byte():
    from assistant.fitting import ReaderSample, Sample, fit_reader
    from assistant.selectors.reader import CANDIDATE_FEATURES

    def samples():
        rng = np.random.default_rng(7)
        out = []
        for q in range(60):
            n = 6
            matrix = rng.normal(size=(n, len(CANDIDATE_FEATURES)))
            labels = np.zeros(n, dtype=bool)
            if q % 5:
                labels[rng.integers(n)] = True
                matrix[labels, 0] += 2.0
            texts = [f"phrase {q}-{i}" for i in range(n)]
            read = ReaderSample(matrix, labels, [0, 0, 0, 1, 1, 2], texts, ["a", "a", "a", "b", "b", "c"],
                                [False] * n, lambda text, l=labels, t=texts: any(t[i] in text for i in np.flatnonzero(l)))
            out.append(Sample("set", f"q{q}", f"doc{q % 7}", bool(q % 5), matrix[:, :3], labels, reader=read))
        return out

    first, second = fit_reader(samples()), fit_reader(samples())
    assert json.dumps(first.to_dict(), sort_keys=True) == json.dumps(second.to_dict(), sort_keys=True)


def test_the_spacy_pipeline_loads_with_the_network_disabled():
    code = ("import socket\n"
            "def refuse(*a, **k): raise OSError('network disabled')\n"
            "socket.socket.connect = refuse; socket.create_connection = refuse\n"
            "from assistant.reading import Pipeline\n"
            "parsed = Pipeline().parse('La session a été animée par Aminata Traoré à Mopti.')\n"
            "print(sorted(label for _, _, label in parsed.entities))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    assert "PER" in done.stdout and "LOC" in done.stdout


def test_the_shipped_calibration_has_a_reader_fitted_for_its_targets():
    reader = Calibration.load().reader
    assert reader is not None and 0.0 < reader.abstain_threshold <= reader.sure_threshold <= 1.0
    fitted = reader.metadata["out_of_fold"]
    assert any("piaf" in name for name in fitted) and reader.metadata["sure_target"] == 0.9
