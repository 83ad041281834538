"""``Assistant``: the public entry point. A question flows one way through it:
validation -> standalone query (chat) -> retrieval -> evidence and answer (answering) -> citations.
"""

from __future__ import annotations

import logging
import threading
import time
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterator

from .chat import (FollowUpRewriter, continuation_of, is_continuation, small_talk, small_talk_reply,
                   validate_history, without_greeting)
from .discovery import Discovery, Explorer, candidate_questions
from .config import Settings, load_settings, prepare_environment
from .context import PipelineContext
from .embeddings import Embedder
from .engines import AnswerEngine, create_engine, engines
from .errors import AssistantError
from .index import ensure_index, load_published, update_index
from .reranking import Reranker
from .retrieval import Retriever
from .engines.compose import quoted_answer
from .selectors import Selection, Unit, selectors
from .stores import Index
from .stores.manifest import stale_reasons
from .text import guess_language, require_utf8
from .types import Answer, Passage

log = logging.getLogger("assistant")


@dataclass(frozen=True)
class Pipeline:
    """The stages a question goes through, over one published index."""

    index: Index
    retriever: Retriever
    reranker: Reranker | None  # None: the retrieval order stands
    engine: AnswerEngine
    rewriter: FollowUpRewriter
    context: PipelineContext  # what the pieces share (calibration, scorer, language models)


class Assistant:
    """Question answering over the corpus, with citations. Build it with ``Assistant.load``."""

    def __init__(self, settings: Settings, embedder: Embedder, pipeline: Pipeline,
                 backends: dict[tuple, Any] | None = None) -> None:
        self.settings, self.embedder = settings, embedder
        # Replaced whole by ``update``: a question reads it once and is answered from one index.
        self.pipeline = pipeline
        self._backends = {} if backends is None else backends  # language models, shared with variants
        self._updating = threading.Lock()
        self._discovery: tuple[Index, Discovery] | None = None
        self._checked = time.monotonic()  # when the store was last asked for a newer index

    @property
    def index(self) -> Index:
        return self.pipeline.index

    @property
    def retriever(self) -> Retriever:
        return self.pipeline.retriever

    @property
    def engine(self) -> AnswerEngine:
        return self.pipeline.engine

    @property
    def rewriter(self) -> FollowUpRewriter:
        return self.pipeline.rewriter

    @classmethod
    def load(cls, index_dir: str | Path | None = None, engine: str | None = None,
             settings: Settings | None = None, force_rebuild: bool = False,
             show_progress: bool = False, **overrides: Any) -> "Assistant":
        """Load (building when missing or stale) the index and the engine."""
        prepare_environment()  # the Python API's entry: offline, like the CLI
        if index_dir is not None:
            overrides["index_dir"] = index_dir
        if engine is not None:
            overrides["engine"] = engine
        settings = (settings or load_settings()).with_overrides(**overrides)
        _check_engine(settings)  # before loading anything
        embedder = Embedder.from_settings(settings)
        if settings.build_on_load or force_rebuild:
            index = ensure_index(settings, embedder, force=force_rebuild, show_progress=show_progress)
        else:
            index = load_published(settings, embedder)
        return cls._compose(settings, embedder, index)

    @classmethod
    def from_index(cls, index: Index, embedder: Embedder, settings: Settings | None = None) -> "Assistant":
        """An assistant over an index already in memory (built by another program, or a test's
        in-memory store): nothing is read or built."""
        return cls._compose(settings or load_settings(), embedder, index)

    @classmethod
    def _compose(cls, settings: Settings, embedder: Embedder, index: Index,
                 backends: dict[tuple, Any] | None = None) -> "Assistant":
        """The pipeline over ``index``: the engine and its selector by name from ``settings``."""
        _check_engine(settings)
        context = PipelineContext(settings, index, embedder, {} if backends is None else backends)
        retriever = Retriever(index, embedder, mode=settings.retrieval_mode, fusion=settings.fusion,
                              rrf_k=settings.rrf_k, dense_weight=settings.dense_weight,
                              candidate_pool=settings.candidate_pool)
        reranker = None
        if settings.rerank:
            if context.calibration.reranker is None:
                log.warning("rerank : la calibration %s n'a pas de modèle de reclassement (relancez "
                            "`assistant calibrate`) ; l'ordre de la recherche est gardé.", context.calibration.path)
            else:
                reranker = Reranker(context.scorer, context.calibration.reranker)
        engine = create_engine(context)
        rewriter = FollowUpRewriter(condense=engine.condense)
        return cls(settings, embedder, Pipeline(index, retriever, reranker, engine, rewriter, context),
                   context.backends)

    def describe(self) -> dict[str, Any]:
        """The answering pipeline as configured: engine, selector and their thresholds, the
        calibration file when one is read (what an eval's configuration records)."""
        pipeline = self.pipeline
        calibration = pipeline.context.calibration_if_loaded()
        return {**pipeline.engine.describe(), "rerank": pipeline.reranker is not None,
                "calibration": calibration.describe() if calibration is not None else None}

    def variant(self, **overrides: Any) -> "Assistant":
        """The same model and index with other query-time settings (retrieval_mode, top_k, engine,
        abstain_threshold, ...): cheap, for comparisons. Index-time settings cannot change here."""
        settings = self.settings.with_overrides(**overrides)
        if stale_reasons(self.index.manifest, settings, self.embedder):
            raise ValueError("variant() ne change que des réglages de requête (pas le modèle ni le découpage).")
        return self._compose(settings, self.embedder, self.index, self._backends)

    def update(self, show_progress: bool = False, notify: Callable[[str], None] | None = None) -> dict[str, Any]:
        """Re-read the corpus folder, embed only what was added or changed, publish the new index and
        answer from it; questions asked meanwhile are answered from the previous one. Returns the
        summary of ``update_index`` (added, updated, removed, failed, chunks_embedded, ...). One
        update at a time: a second caller gets ``RuntimeError``."""
        if not self._updating.acquire(blocking=False):
            raise RuntimeError("Une indexation est déjà en cours : réessayez quand elle sera finie.")
        try:
            index, summary = update_index(self.settings, self.embedder, show_progress=show_progress,
                                          log=notify or log.info, loaded=self.index)
            self._answer_from(index)
            return summary
        finally:
            self._updating.release()

    def refresh(self) -> bool:
        """Answer from the index another process published since this one was loaded (``assistant
        index`` on the same folder, or any process on the same PostgreSQL store): True when it did.
        Questions asked meanwhile are answered from the previous index. Serving processes call it
        on their own, at most every ``refresh_seconds``."""
        if not self._updating.acquire(blocking=False):
            return False  # this process is publishing one itself
        try:
            index = self.pipeline.index
            if index.published_version() == index.version:
                return False
            try:
                fresh = load_published(self.settings, self.embedder)
            except AssistantError as exc:
                log.warning("%s Il n'est pas chargé.", exc)
                return False
            self._answer_from(fresh)
            log.info("Index publié par un autre processus chargé (%s).", fresh.version)
            return True
        finally:
            self._updating.release()

    def _answer_from(self, index: Index) -> None:
        """The next questions go through a pipeline over ``index`` (one assignment: a question
        under way keeps the pipeline it started with)."""
        self.pipeline = self._compose(self.settings, self.embedder, index, self._backends).pipeline

    def _check_for_newer_index(self) -> None:
        now = time.monotonic()
        if now - self._checked < self.settings.refresh_seconds:
            return
        self._checked = now

        def refresh() -> None:
            try:
                self.refresh()
            except Exception as exc:  # noqa: BLE001 - a store unreachable for a moment: try again later
                log.warning("Vérification de l'index publié impossible : %s", exc)

        threading.Thread(target=refresh, name="index-refresh", daemon=True).start()

    def discover(self) -> Discovery:
        """The corpus at a glance (``discovery.Discovery``): documents, glossary, timeline, and
        suggested questions, each of which this assistant answers with a citation. Computed once
        per published index."""
        index = self.index
        cached = self._discovery
        if cached is not None and cached[0] is index:
            return cached[1]
        found = Explorer().explore(index.chunks)
        questions: list[str] = []
        for question in candidate_questions(found)[:self.settings.suggested_questions * 5]:
            answer = self.ask(question)
            if not answer.abstained and answer.citations:
                questions.append(question)
                if len(questions) == self.settings.suggested_questions:
                    break
        found = replace(found, questions=tuple(questions))
        self._discovery = (index, found)
        return found

    # -- public API -----------------------------------------------------------------------
    def search(self, question: str, k: int | None = None, mode: str | None = None) -> list[Passage]:
        """The passages ``ask`` would read, best first; with ``mode`` (hybrid, dense, bm25) that
        retrieval's own order, not reranked."""
        question, _ = self._clean_question(question)
        k = _check_k(k, self.settings.top_k)
        mode = _check_mode(mode)
        self._check_for_newer_index()
        pipeline = self.pipeline
        if mode is not None or pipeline.reranker is None:
            return pipeline.retriever.retrieve(question, k, mode=mode)
        pool = pipeline.retriever.retrieve(question, max(k, self.settings.candidate_pool))
        return pipeline.reranker.rerank(question, question, pool)[:k]

    def ask(self, question: str, history: list[dict] | None = None, k: int | None = None) -> Answer:
        answer = None
        for piece in self.stream(question, history, k=k):
            answer = piece
        assert isinstance(answer, Answer)
        return answer

    def stream(self, question: str, history: list[dict] | None = None,
               k: int | None = None) -> Iterator[str | Answer]:
        """Yields text pieces, then the final ``Answer``."""
        started = time.perf_counter()
        question, notices = self._clean_question(question)
        k = _check_k(k, self.settings.top_k)
        self._check_for_newer_index()
        pipeline = self.pipeline
        index, engine = pipeline.index, pipeline.engine
        turns = validate_history(history)
        talk = small_talk(question)
        if talk is not None:  # a greeting, thanks or « aide »: a reply, not a search
            kind, language = talk
            titles = list(dict.fromkeys(c.title or c.document for c in index.chunks))
            text = small_talk_reply(kind, language, titles, list(self.discover().questions))
            yield Answer(text=text, citations=(), abstained=False, query="", question=question, language=language,
                         engine=self.settings.engine, timings={"total_ms": _ms(started, time.perf_counter())},
                         notices=tuple(notices), conversational=True)
            return
        question = without_greeting(question)
        # Only the recent turns can be what a follow-up refers to; a long history costs time, not sense.
        limit = self.settings.max_question_chars
        turns = [{**t, "content": t["content"][:limit]} for t in turns[-self.settings.max_history_turns:]]
        following = self._continuation(question, turns)
        if following is not None:  # « Et ensuite ? »: the next sentence of the document, not a new search
            yield replace(following, timings={**following.timings, "total_ms": _ms(started, time.perf_counter())},
                          notices=tuple(notices))
            return
        query = pipeline.rewriter.rewrite(question, turns)[:2 * limit]
        rewritten = time.perf_counter()
        # The reranker and the calibrated scorers read the whole candidate pool; the answer keeps k passages.
        wide = pipeline.reranker is not None or engine.reads_pool
        passages = pipeline.retriever.retrieve(query, max(k, self.settings.candidate_pool) if wide else k)
        if pipeline.reranker is not None:
            passages = pipeline.reranker.rerank(question, query, passages)
        retrieved = time.perf_counter()
        for piece in engine.stream(question, query, passages):
            if isinstance(piece, Answer):
                timings = {"rewrite_ms": _ms(started, rewritten), "retrieval_ms": _ms(rewritten, retrieved),
                           **piece.timings, "total_ms": _ms(started, time.perf_counter())}
                yield replace(piece, timings=timings, retrieved=piece.retrieved[:k],
                              notices=(*notices, *piece.notices, *_language_notice(piece)))
            else:
                yield piece

    def _continuation(self, question: str, turns: list[dict[str, str]]) -> Answer | None:
        """For « Et ensuite ? » after an answer: the sentence that follows, in its document, the last
        one that answer quoted, cited; None for any other question (or when it quoted nothing)."""
        previous = next((t["content"] for t in reversed(turns) if t["role"] == "assistant"), None)
        if previous is None or not is_continuation(question):
            return None
        index = self.pipeline.index
        sentence = continuation_of(previous, index.sentences)
        if sentence is None:
            return None
        passage = Passage.of_chunk(index.chunk(sentence.chunk_id))
        selection = Selection(question, question, guess_language(question), (Unit((sentence,), 1.0, passage),),
                              (passage,))
        return quoted_answer(selection, self.pipeline.engine.name, time.perf_counter())

    # -- input checks ---------------------------------------------------------------------
    def _clean_question(self, question: Any) -> tuple[str, list[str]]:
        if not isinstance(question, str):
            raise ValueError("La question doit être du texte.")
        question = question.strip()
        if not question:
            raise ValueError("La question est vide : écrivez une question.")
        require_utf8(question, "La question")
        notices = []
        limit = self.settings.max_question_chars
        if len(question) > limit:
            notice = (f"La question faisait {len(question)} caractères ; seuls les {limit} premiers "
                      "ont été pris en compte.")
            warnings.warn(notice, stacklevel=3)
            log.warning(notice)
            notices.append(notice)
            question = question[:limit]
        return question, notices


def _language_notice(answer: Answer) -> tuple[str, ...]:
    """An English question answered with quotes in French says so (in English)."""
    quoted = " ".join(q for c in answer.citations for q in c.quotes)
    if answer.abstained or answer.language == "fr" or not quoted or guess_language(quoted) == answer.language:
        return ()
    return ("The quotes are in the language of the documents (French); they are not translated.",)


def _check_engine(settings: Settings) -> None:
    """Unknown engine or selector names fail before anything is loaded (ValueError, in French)."""
    engines.get(settings.engine)
    selectors.get(settings.answer_scorer)


def _check_k(k: Any, default: int) -> int:
    """``k`` (or, unset, the ``top_k`` setting) as a count of passages: an integer from 1."""
    if k is None:
        if isinstance(default, bool) or not isinstance(default, int) or default < 1:
            raise ValueError(f"Le réglage top_k doit être un entier positif (reçu {default!r}).")
        return default
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k doit être un entier positif (reçu {k!r}).")
    return k


def _check_mode(mode: Any) -> str | None:
    """A retrieval mode for ``search``: None (the configured pipeline) or one of ``MODES``."""
    from .retrieval import MODES

    if mode is None or (isinstance(mode, str) and mode in MODES):
        return mode
    raise ValueError(f"mode doit être {', '.join(MODES[:-1])} ou {MODES[-1]} (reçu {mode!r}).")


def _ms(start: float, end: float) -> float:
    return round((end - start) * 1000, 2)
