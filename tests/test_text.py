"""Word analysis shared by every stage."""

from assistant.text import content_stems, normalize_for_match


def test_inflections_share_a_stem_and_accents_are_folded():
    assert content_stems("présidée") == content_stems("présidé") == content_stems("presidé") == ["presid"]
    assert content_stems("les jeunes innovantes") == content_stems("jeune innovants")


def test_function_words_carry_no_stem():
    assert content_stems("le la des et qui est aujourd’hui") == []


def test_matching_rule_of_the_eval_format():
    assert normalize_for_match("« Voix  des\u00a0femmes »", fold=True) == '" voix des femmes "'
