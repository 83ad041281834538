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
    verdict = verify("L'opération Barkhane s'est retirée définitivement du Mali le 15 août 2022 [1].")
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


def test_words_the_excerpts_do_not_contain_fail(embedder):
    """The measured failure of the small model: the question's frame filled with a wrong entity."""
    verifier = Verifier(embedder)
    question = "Sur requête de qui la fin de l’opération Barkhane a-t-elle été annoncée ?"
    output = "La fin de l'opération Barkhane a été annoncée sur requête de la taskforce Takuba [1]."
    verdict = verifier.verify(output, EXCERPTS, embedder.embed_passages(EXCERPTS), "fr", question=question)
    assert not verdict.ok and "unsupported" in verdict.reason
    right = "La fin officielle de l'opération a été annoncée par le président de la République [1]."
    assert verifier.verify(right, EXCERPTS, embedder.embed_passages(EXCERPTS), "fr", question=question).ok


def test_a_number_must_count_what_the_excerpt_counts(embedder):
    verifier = Verifier(embedder)
    excerpts = ["Plus de 5000 Maliens ont été consultés dans les huit régions du pays."]
    vectors = embedder.embed_passages(excerpts)
    assert not verifier.verify("5000 régions ont été consultées [1].", excerpts, vectors, "fr").ok
    assert verifier.verify("Plus de 5000 Maliens ont été consultés [1].", excerpts, vectors, "fr").ok


def test_one_sentence_may_draw_on_two_cited_excerpts(verify):
    verdict = verify("L'opération Barkhane s'est retirée du Mali ; la médiation internationale est présidée "
                     "par l'Algérie [1][2].")
    assert verdict.ok and verdict.statements[0].sources == (1, 2)


ITEMS = ("Dialogue transfrontalier pour des actions proactives pour la paix pour empêcher les conflits",
         "Approche intégrée pour lutter contre l’impunité et améliorer l’accès à la justice",
         "Promouvoir des programmes qui prennent en considération la paix")


@pytest.fixture(scope="module")
def verify_list(embedder):
    verifier = Verifier(embedder)
    excerpts = ["\n".join(f"- {item}" for item in ITEMS)]
    vectors = embedder.embed_passages(excerpts)
    return lambda output, question: verifier.verify(output, excerpts, vectors, "fr", question=question,
                                                    enumerations=[ITEMS])


def test_a_list_item_cut_short_fails(verify_list):
    verdict = verify_list("Des actions proactives pour la paix pour empêcher les conflits [1].",
                          "Quelle initiative veut empêcher les conflits ?")
    assert not verdict.ok and verdict.kind == "list_item"
    assert verify_list(f"{ITEMS[0]} [1].", "Quelle initiative veut empêcher les conflits ?").ok


def test_the_item_the_question_points_to_must_be_named(verify_list):
    question = "Quels sont les objectifs de l’approche intégrée ?"
    assert not verify_list(f"{ITEMS[2]} [1].", question).ok
    assert verify_list(f"{ITEMS[1]} [1].", question).ok


def test_every_refusal_has_a_french_explanation(verify, verify_list):
    from assistant.grounding import REFUSALS, refusal_notice

    refused = [verify(""), verify("Operation Barkhane left Mali for good on 15 August 2022 [1]."),
               verify("Le budget annuel du programme s'élève à trois millions d'euros [1]."),
               verify_list("Des actions proactives pour la paix pour empêcher les conflits [1].", "Quoi ?")]
    kinds = [v.kind for v in refused]
    assert kinds == ["empty", "language", "unsupported", "list_item"]
    assert all(REFUSALS[language].keys() == REFUSALS["fr"].keys() for language in REFUSALS)
    assert "mots ou des nombres absents" in refusal_notice("unsupported", "fr")
    assert refusal_notice("language", "en").startswith("The drafted answer") and "English" in refusal_notice(
        "language", "en")
    assert refusal_notice("empty", "de") == refusal_notice("empty", "fr")  # no wording for that language yet


def test_names_copied_from_the_excerpts_do_not_make_an_answer_french(embedder):
    verifier = Verifier(embedder)
    excerpts = ["En 2013, Interpeace et l’Institut Malien de Recherche-Action pour la Paix (IMRAP) ont mené "
                "un dialogue national."]
    vectors = embedder.embed_passages(excerpts)
    assert verifier.verify("IMRAP is the Institut Malien de Recherche-Action pour la Paix [1].", excerpts, vectors,
                           "en").ok
    copied = verifier.verify(excerpts[0] + " [1]", excerpts, vectors, "en")
    assert not copied.ok and copied.kind == "language"
    assert verifier.verify("Institut Malien de Recherche-Action pour la Paix [1].", excerpts, vectors, "en").ok
    assert verifier.verify("En 2013 [1].", excerpts, vectors, "en").kind == "language"  # French, not a name
