"""The dataset reader (shared JSONL format) and the project's own dev set."""

import json

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from assistant.text import normalize_for_match
from evals.dataset import DatasetError, load_dataset

from .conftest import CORPUS_DIR, DEV_SET

GOOD = {"id": "q1", "question": "Quand Barkhane a-t-elle quitté le Mali ?", "must_include": [["15 août 2022"]]}


def write(tmp_path, lines, name="set.jsonl"):
    path = tmp_path / name
    path.write_text("\n".join(line if isinstance(line, str) else json.dumps(line, ensure_ascii=False)
                              for line in lines) + "\n", encoding="utf-8")
    return path


def test_reads_valid_file_with_comments_blank_lines_and_unknown_fields(tmp_path):
    path = write(tmp_path, [
        "// a comment",
        GOOD,
        "",
        {"id": "q2", "question": "Budget ?", "answerable": False, "difficulty": "hard", "tags": ["x"]},
        {"id": "q3", "question": "Et ensuite ?", "history": [{"role": "user", "content": "Barkhane ?"},
                                                              {"role": "assistant", "content": "2022 [1]"}],
         "lang": "fr", "evidence": ["retirée du Mali"], "reference_answer": "Le 9 novembre."},
    ])
    items, problems = load_dataset(path)
    assert problems == []
    assert [i.id for i in items] == ["q1", "q2", "q3"]
    assert [i.line for i in items] == [2, 4, 5]
    assert items[0].answerable and items[0].must_include == (("15 août 2022",),)
    assert items[1].extra == {"difficulty": "hard", "tags": ["x"]}  # unknown fields kept
    assert items[1].to_dict()["difficulty"] == "hard"
    assert [i.category for i in items] == ["french", "unanswerable", "multi-turn"]


def test_malformed_lines_are_all_reported_with_line_numbers(tmp_path):
    path = write(tmp_path, [
        GOOD,
        "{not json",
        {"id": "q2"},
        {"id": "q3", "question": "Q ?", "must_include": ["15 août"]},
        {"id": "q4", "question": "Q ?", "answerable": "yes"},
        {"id": "q5", "question": "Q ?", "history": [{"role": "bot", "content": "x"}]},
        ["a", "list"],
        {"id": "q6", "question": "Q ?", "must_include": [[""]]},
        {"id": "q7", "question": "Q ?"},
    ])
    with pytest.raises(DatasetError) as caught:
        load_dataset(path)
    message = str(caught.value)
    for number in (2, 3, 4, 5, 6, 7, 8):
        assert f"line {number}:" in message
    assert "line 1:" not in message and "line 9:" not in message
    assert "'question' is missing" in message and "invalid JSON" in message
    assert len(caught.value.problems) == 7


def test_skip_invalid_keeps_the_valid_lines(tmp_path):
    path = write(tmp_path, [GOOD, "{broken", {"id": "q2", "question": "Q ?"}])
    items, problems = load_dataset(path, skip_invalid=True)
    assert [i.id for i in items] == ["q1", "q2"]
    assert len(problems) == 1 and problems[0].startswith("line 2: invalid JSON")


def test_duplicate_ids_are_rejected_even_when_skipping(tmp_path):
    path = write(tmp_path, [GOOD, {"id": "q2", "question": "Q ?"}, {**GOOD, "question": "Autre ?"}])
    for skip in (False, True):
        with pytest.raises(DatasetError, match=r"line 3: duplicate id 'q1' \(first on line 1\)"):
            load_dataset(path, skip_invalid=skip)


def test_empty_or_unreadable_files(tmp_path):
    with pytest.raises(DatasetError, match="no valid item"):
        load_dataset(write(tmp_path, ["// nothing", ""]))
    with pytest.raises(DatasetError, match="cannot read"):
        load_dataset(tmp_path / "missing.jsonl")
    latin1 = tmp_path / "latin1.jsonl"
    latin1.write_bytes(json.dumps(GOOD, ensure_ascii=False).encode("latin-1"))
    with pytest.raises(DatasetError, match="cannot read"):
        load_dataset(latin1)


def test_byte_order_mark_is_accepted(tmp_path):
    path = tmp_path / "bom.jsonl"
    path.write_text("\ufeff" + json.dumps(GOOD), encoding="utf-8")
    assert [i.id for i in load_dataset(path)[0]] == ["q1"]


# -- the dev set ---------------------------------------------------------------------------------
def _corpus_text(fold=False):
    paths = sorted(p for p in CORPUS_DIR.iterdir() if p.suffix in (".txt", ".md"))
    assert paths
    return "\n".join(normalize_for_match(p.read_text(encoding="utf-8"), fold=fold) for p in paths)


def test_dev_set_follows_the_format():
    items, problems = load_dataset(DEV_SET)
    assert problems == []
    for item in items:
        assert item.lang in ("fr", "en"), item.id
        if item.answerable:
            assert item.must_include, f"{item.id}: an answerable item needs must_include"
        else:
            assert not item.must_include and not item.evidence, f"{item.id}: unanswerable items cite nothing"
        if item.history:
            assert item.history[-1]["role"] == "assistant", f"{item.id}: the question is the next user turn"


def test_dev_set_evidence_occurs_in_the_corpus():
    corpus = _corpus_text()
    missing = [(item.id, e) for item in load_dataset(DEV_SET)[0] for e in item.evidence
               if normalize_for_match(e) not in corpus]
    assert not missing, missing


def test_dev_set_facts_can_be_found_in_the_corpus():
    """Every required fact has at least one spelling a verbatim (extractive) answer can contain."""
    corpus = _corpus_text(fold=True)
    impossible = [(item.id, group) for item in load_dataset(DEV_SET)[0] for group in item.must_include
                  if not any(normalize_for_match(s, fold=True) in corpus for s in group)]
    assert not impossible, impossible


def test_dev_set_counts():
    items, _ = load_dataset(DEV_SET)
    french_answerable = [i for i in items if i.answerable and i.lang == "fr"]
    english = [i for i in items if i.lang == "en"]
    unanswerable = [i for i in items if not i.answerable]
    multi_turn = [i for i in items if i.history]
    assert len(items) >= 60
    assert len(french_answerable) >= 35
    assert len(english) >= 8
    assert len(unanswerable) >= 10
    assert len(multi_turn) >= 6


_VALUE = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=30),
                      lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=12), c, max_size=4),
                      max_leaves=12)
_ITEM = st.dictionaries(st.sampled_from(["id", "question", "answerable", "must_include", "evidence", "history",
                                         "reference_answer", "lang", "other"]), _VALUE, max_size=8)
_LINE = st.one_of(_ITEM.map(json.dumps), st.text(max_size=80), st.just(""), st.just("// commentaire"))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_LINE, max_size=6), st.booleans())
def test_any_dataset_file_loads_or_is_a_dataset_error(tmp_path, lines, skip_invalid):
    path = tmp_path / "fuzz.jsonl"
    path.write_text("\n".join(lines), encoding="utf-8")
    try:
        items, problems = load_dataset(path, skip_invalid=skip_invalid)
    except DatasetError as error:
        assert str(error)
        return
    assert all(item.id and isinstance(item.question, str) for item in items)
