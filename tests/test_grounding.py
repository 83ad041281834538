"""Verification of generated answers, on crafted model outputs (the real embedding model)."""

import pytest

from assistant.grounding import Verifier, build_messages

EXCERPTS = [
    "L’opération Barkhane s’est définitivement retirée du Mali le 15 août 2022 (tout comme la taskforce "
    "européenne Takuba) et la fin officielle de l’opération a été annoncée par le président de la République "
    "le 9 novembre 2022.",
    "Cependant, des difficultés importantes persistent jusqu’à aujourd’hui dans la mise en œuvre de celui-ci en "
    "dépit des efforts d’appui de la médiation internationale, présidée par l’Algérie.",
]


@pytest.fixture(scope="module")
def verify(embedder):
    verifier = Verifier(embedder)
    vectors = embedder.embed_passages(EXCERPTS)
    return lambda output, language="fr": verifier.verify(output, EXCERPTS, vectors, language)


def test_a_supported_cited_answer_passes(verify):
    verdict = verify("L'opération Barkhane a quitté définitivement le Mali le 15 août 2022 [1].")
    assert verdict.ok and verdict.statements[0].sources == (1,)


def test_a_marker_before_the_full_stop_leaves_no_gap(verify):
    verdict = verify("La médiation internationale est présidée par l'Algérie [2].")
    assert verdict.ok and verdict.statements[0].text.endswith("l'Algérie.")


def test_marker_variants_are_repaired(verify):
    verdict = verify("La médiation internationale est présidée par l'Algérie [Source 2].")
    assert verdict.ok and verdict.statements[0].sources == (2,) and "markers normalised" in verdict.repairs


def test_out_of_range_marker_is_reattached_by_support(verify):
    verdict = verify("La médiation internationale est présidée par l'Algérie [7].")
    assert verdict.ok and verdict.statements[0].sources == (2,)
    assert any("out of range" in r for r in verdict.repairs)


def test_uncited_sentence_gets_the_marker_that_supports_it(verify):
    verdict = verify("La fin officielle de l'opération Barkhane a été annoncée le 9 novembre 2022.")
    assert verdict.ok and verdict.statements[0].sources == (1,)


def test_unsupported_sentence_fails(verify):
    verdict = verify("Le budget annuel du programme s'élève à trois millions d'euros [1].")
    assert not verdict.ok and "unsupported" in verdict.reason


def test_a_number_the_excerpt_does_not_state_fails(verify):
    verdict = verify("L'opération Barkhane s'est retirée du Mali le 16 août 2021 [1].")
    assert not verdict.ok


def test_empty_output_fails(verify):
    assert not verify("").ok and not verify("  [1] ").ok


def test_wrong_language_fails(verify):
    verdict = verify("Operation Barkhane left Mali for good on 15 August 2022 [1].")
    assert not verdict.ok and "language" in verdict.reason or "question in 'fr'" in verdict.reason
    assert verify("Operation Barkhane left Mali for good on 15 August 2022 [1].", language="en").ok


def test_prompt_echo_is_removed(verify):
    output = "Extraits :\n[1] " + EXCERPTS[0] + "\nRéponse : Barkhane s'est retirée du Mali le 15 août 2022 [1]."
    verdict = verify(output)
    assert verdict.ok and "prompt echo removed" in verdict.repairs
    assert len(verdict.statements) == 1


def test_prompt_is_short_french_and_numbered():
    messages = build_messages("Quand Barkhane a-t-elle quitté le Mali ?", EXCERPTS, "en")
    assert messages[0]["role"] == "system" and "extraits" in messages[0]["content"]
    assert "[1] L’opération" in messages[1]["content"] and "[2] Cependant" in messages[1]["content"]
    assert messages[1]["content"].endswith("Réponds en anglais.")
    # the system prompt does not depend on the question: llama.cpp reuses its cached prefix
    assert build_messages("Autre ?", EXCERPTS[:1], "fr")[0] == messages[0]


def test_dates_in_english_are_numbers_of_the_excerpt(verify):
    verdict = verify("Operation Barkhane left Mali on August 15, 2022 [1].", language="en")
    assert verdict.ok, verdict.reason
    assert not verify("Operation Barkhane left Mali on August 16, 2022 [1].", language="en").ok


def test_an_echo_of_the_question_fails(embedder):
    verifier = Verifier(embedder)
    question = "Pourquoi Interpeace et l’IMRAP ont-ils lancé un dialogue national ?"
    verdict = verifier.verify("Pourquoi Interpeace et l'IMRAP ont-ils lancé un dialogue national ? [1]",
                              EXCERPTS, embedder.embed_passages(EXCERPTS), "fr", question=question)
    assert not verdict.ok and "question" in verdict.reason
