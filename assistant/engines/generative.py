"""The generative engines ``llm`` (a local model through llama.cpp) and ``openai`` (any
OpenAI-compatible server): generated answers, grounded and verified.

The sentence selector does the reading: it scores the sentences, decides abstention (before any
generation) and picks the evidence. The language model only rewrites that evidence as a short
answer in the question's language; ``grounding.Verifier`` then checks what it wrote, and anything
that fails is replaced by the extractive answer.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Protocol, Sequence

import numpy as np

from ..errors import AssistantError
from ..grounding import CORPUS_LANGUAGE, INSIST, Verifier, build_messages, condense_messages, refusal_notice
from ..selectors.base import SentenceSelector, Unit, create_selector
from ..types import Answer, Passage
from .base import engines
from .compose import abstention, compose, extractive_pieces, reading_order, unit_text

if TYPE_CHECKING:
    from ..context import PipelineContext
    from ..stores import Index

log = logging.getLogger("assistant.generation")


class ChatBackend(Protocol):
    name: str

    def stream(self, messages: list[dict[str, str]], max_tokens: int) -> Iterator[str]:
        """Text pieces of the model's reply; closing the iterator stops the generation."""


class LlamaCppBackend:
    """A GGUF model in this process, loaded once and reused; one generation at a time."""

    name = "llm"

    def __init__(self, model_path: Path, context: int = 2048, threads: int | None = None) -> None:
        try:
            from llama_cpp import Llama
        except ImportError as exc:
            raise AssistantError("llama-cpp-python n'est pas installé : lancez `make llm`.") from exc
        self.model_path = Path(model_path)
        self.llama = Llama(model_path=str(self.model_path), n_ctx=context, n_threads=threads or os.cpu_count(),
                           verbose=False)
        self._lock = threading.Lock()

    def stream(self, messages: list[dict[str, str]], max_tokens: int) -> Iterator[str]:
        with self._lock:
            chunks = self.llama.create_chat_completion(messages, stream=True, max_tokens=max_tokens,
                                                       temperature=0.0)
            try:
                for chunk in chunks:
                    piece = chunk["choices"][0]["delta"].get("content")
                    if piece:
                        yield piece
            finally:
                chunks.close()  # Stop: no more tokens are computed


class OpenAICompatibleBackend:
    """Any server speaking the OpenAI chat-completions protocol (Ollama, vLLM, llama.cpp, OpenAI)."""

    name = "openai"

    def __init__(self, base_url: str, model: str, api_key: str = "", timeout: float = 120.0) -> None:
        if not base_url:
            raise AssistantError("Moteur openai : indiquez l'adresse du serveur dans ASSISTANT_LLM_BASE_URL.")
        self.base_url, self.model, self.api_key, self.timeout = base_url.rstrip("/"), model, api_key, timeout

    def stream(self, messages: list[dict[str, str]], max_tokens: int) -> Iterator[str]:
        import httpx

        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        payload = {"model": self.model, "messages": messages, "stream": True, "temperature": 0.0,
                   "max_tokens": max_tokens}
        try:
            with httpx.stream("POST", f"{self.base_url}/chat/completions", json=payload, headers=headers,
                              timeout=self.timeout) as response:
                if response.status_code >= 400:
                    response.read()
                    raise AssistantError(f"Le serveur {self.base_url} a répondu {response.status_code} : "
                                         f"{response.text[:200]}")
                for line in response.iter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    choices = json.loads(data).get("choices") or [{}]
                    piece = (choices[0].get("delta") or {}).get("content")
                    if piece:
                        yield piece
        except httpx.HTTPError as exc:
            raise AssistantError(f"Serveur de langage injoignable ({self.base_url}) : {exc}.") from exc


class GenerativeEngine:
    """Evidence from the sentence selector, words from a language model, checks by the program."""

    reads_pool = False

    def __init__(self, selector: SentenceSelector, backend: ChatBackend, verifier: Verifier, index: "Index",
                 max_tokens: int = 120) -> None:
        self.selector, self.backend, self.verifier, self.index = selector, backend, verifier, index
        self.max_tokens = max_tokens
        self.name = backend.name
        self.reads_pool = selector.reads_pool
        self.condense = self._condense

    def describe(self) -> dict[str, Any]:
        return {"engine": self.name, "selector": self.selector.describe(), "max_tokens": self.max_tokens}

    def _condense(self, question: str, history: list[dict[str, str]]) -> str | None:
        """A standalone version of a follow-up question, written by the model (None if unusable)."""
        text = "".join(self.backend.stream(condense_messages(question, history), max_tokens=60)).strip()
        text = text.strip('"«» ').splitlines()[0].strip() if text else ""
        return text if 3 <= len(text) <= 4 * len(question) + 200 else None

    def answer(self, question: str, query: str, passages: Sequence[Passage]) -> Answer:
        result = None
        for piece in self.stream(question, query, passages):
            result = piece
        assert isinstance(result, Answer)
        return result

    def stream(self, question: str, query: str, passages: Sequence[Passage]) -> Iterator[str | Answer]:
        started = time.perf_counter()
        selection = self.selector.select(question, query, passages)
        if selection.abstained:  # retrieval below the abstention checks: no generation at all
            yield abstention(selection, self.name, started, passages=passages)
            return
        units = reading_order(list(selection.units))
        language = selection.language
        excerpts = [unit_text(u) for u in units]
        messages = build_messages(question, excerpts, language)
        output, first_token = [], None
        for piece in self.backend.stream(messages, self.max_tokens):
            if first_token is None:
                first_token = time.perf_counter()
            output.append(piece)
            yield piece
        vectors = np.stack([self._unit_vector(u) for u in units])
        check = functools.partial(self.verifier.verify, excerpts=excerpts, excerpt_vectors=vectors,
                                  language=language, question=question,
                                  enumerations=[tuple(s.text for s in u.sentences if s.in_list) for u in units])
        verdict = check("".join(output))
        if verdict.kind in ("language", "empty", "echo") and language in INSIST:
            # The fallback would quote French to someone who asked in another language: one more try.
            verdict = check("".join(self.backend.stream(build_messages(question, excerpts, language, insist=True),
                                                        self.max_tokens)))
        generated = time.perf_counter()
        timings = {"first_token_ms": round(((first_token or generated) - started) * 1000, 1),
                   "generation_ms": round((generated - started) * 1000, 1)}
        if not verdict.ok:
            answer = compose(selection, extractive_pieces(units), self.name, started,
                             notices=(refusal_notice(verdict.kind, language),), passages=passages)
            log.info("generated answer refused: %s", verdict.reason)
        else:
            pieces = [(s.text, [units[n - 1] for n in s.sources]) for s in verdict.statements]
            if language != CORPUS_LANGUAGE:  # show the corpus's own words the answer rests on
                cited = list(dict.fromkeys(units[n - 1] for s in verdict.statements for n in s.sources))
                pieces += [("Texte source : « " + " ".join(unit_text(u).split()) + " »", [u]) for u in cited]
            answer = compose(selection, pieces, self.name, started, passages=passages)
        yield replace(answer, timings={**answer.timings, **timings})

    def _unit_vector(self, unit: Unit) -> np.ndarray:
        vectors = [self.index.sentence_vector(s.id) for s in unit.sentences]
        mean = np.mean(vectors, axis=0)
        return mean / (np.linalg.norm(mean) or 1.0)


def chat_backend(settings: Any, cache: dict[tuple, Any]) -> ChatBackend:
    """The language model for an engine, created once per configuration."""
    if settings.engine == "openai":
        key = ("openai", settings.llm_base_url, settings.llm_model)
        if key not in cache:
            cache[key] = OpenAICompatibleBackend(settings.llm_base_url, settings.llm_model, settings.llm_api_key,
                                                 settings.llm_timeout)
        return cache[key]
    from ..gguf import assemble

    path = Path(settings.llm_model_path) if settings.llm_model_path else None
    key = ("llm", str(path), settings.llm_context, settings.llm_threads)
    if key not in cache:
        cache[key] = LlamaCppBackend(path or assemble(settings.cache_dir), settings.llm_context,
                                     settings.llm_threads or None)
    return cache[key]


@engines.register("llm")
@engines.register("openai")
def generative_engine(context: "PipelineContext") -> GenerativeEngine:
    settings = context.settings
    # The gate was fitted on the rules' quoted answers, not on generated ones: under a language
    # model the rules choose the evidence alone.
    selector = create_selector("rules" if settings.answer_scorer == "gated" else settings.answer_scorer, context)
    return GenerativeEngine(selector, chat_backend(settings, context.backends),
                            Verifier(context.embedder, settings.llm_min_support_cross_lingual), context.index,
                            max_tokens=settings.llm_max_tokens)
