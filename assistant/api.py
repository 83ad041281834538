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

from .answering import Answer, ExtractiveAnswerer
from .chat import FollowUpRewriter, small_talk, small_talk_reply, validate_history, without_greeting
from .discovery import Discovery, Explorer, candidate_questions
from .config import Settings, load_settings
from .embeddings import Embedder
from .errors import AssistantError
from .index import Index, ensure_index, load_published, stale_reasons, update_index
from .reranking import Reranker
from .retrieval import Passage, Retriever
from .text import guess_language, require_utf8

log = logging.getLogger("assistant")
ENGINES = ("extractive", "llm", "openai")
ANSWER_SCORERS = ("rules", "calibrated", "gated")


@dataclass(frozen=True)
class Pipeline:
    """The stages a question goes through, over one published index."""

    index: Index
    retriever: Retriever
    reranker: Reranker | None  # None: the retrieval order stands
    answerer: Any
    rewriter: FollowUpRewriter


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
    def answerer(self) -> Any:
        return self.pipeline.answerer

    @property
    def rewriter(self) -> FollowUpRewriter:
        return self.pipeline.rewriter

    @classmethod
    def load(cls, index_dir: str | Path | None = None, engine: str | None = None,
             settings: Settings | None = None, force_rebuild: bool = False,
             show_progress: bool = False, **overrides: Any) -> "Assistant":
        """Load (building when missing or stale) the index and the engine."""
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
    def _compose(cls, settings: Settings, embedder: Embedder, index: Index,
                 backends: dict[tuple, Any] | None = None) -> "Assistant":
        _check_engine(settings)
        retriever = Retriever(index, embedder, mode=settings.retrieval_mode, fusion=settings.fusion,
                              rrf_k=settings.rrf_k, dense_weight=settings.dense_weight,
                              candidate_pool=settings.candidate_pool)
        gated = settings.answer_scorer == "gated" and settings.engine == "extractive"
        scorer = None
        if settings.rerank or gated or settings.answer_scorer == "calibrated":
            from .calibration import Calibration
            from .evidence import EvidenceScorer

            scorer = EvidenceScorer(index, embedder, Calibration.load(settings.calibration or None))
        reranker = None
        if settings.rerank and scorer is not None:
            if scorer.calibration.reranker is None:
                log.warning("rerank : la calibration %s n'a pas de modèle de reclassement (relancez "
                            "`assistant calibrate`) ; l'ordre de la recherche est gardé.", scorer.calibration.path)
            else:
                reranker = Reranker(scorer, scorer.calibration.reranker)
        if settings.answer_scorer == "calibrated":
            from .calibrated import CalibratedAnswerer

            answerer: Any = CalibratedAnswerer(index, embedder, scorer, max_sentences=1)  # one sentence (issue 10)
        else:
            answerer = rules_answerer(settings, index, embedder)
            if gated:
                from .calibrated import AbstentionGate

                answerer = AbstentionGate(answerer, scorer, settings.top_k)
        rewriter = FollowUpRewriter()
        backends = {} if backends is None else backends
        if settings.engine != "extractive":
            from .generation import GenerativeAnswerer
            from .grounding import Verifier

            answerer = GenerativeAnswerer(answerer, _backend(settings, backends),
                                          Verifier(embedder, settings.llm_min_support_cross_lingual),
                                          max_tokens=settings.llm_max_tokens)
            rewriter = FollowUpRewriter(condense=answerer.condense)
        return cls(settings, embedder, Pipeline(index, retriever, reranker, answerer, rewriter), backends)

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
            if index.store.version() == index.version:
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
        index, answerer = pipeline.index, pipeline.answerer
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
        query = pipeline.rewriter.rewrite(question, turns)[:2 * limit]
        rewritten = time.perf_counter()
        # The reranker and the calibrated scorer read the whole candidate pool; the answer keeps k passages.
        scorer, engine = self.settings.answer_scorer, self.settings.engine
        wide = pipeline.reranker is not None or scorer == "calibrated" or (scorer == "gated" and engine == "extractive")
        passages = pipeline.retriever.retrieve(query, max(k, self.settings.candidate_pool) if wide else k)
        if pipeline.reranker is not None:
            passages = pipeline.reranker.rerank(question, query, passages)
        retrieved = time.perf_counter()
        for piece in answerer.stream(question, query, passages):
            if isinstance(piece, Answer):
                timings = {"rewrite_ms": _ms(started, rewritten), "retrieval_ms": _ms(rewritten, retrieved),
                           **piece.timings, "total_ms": _ms(started, time.perf_counter())}
                yield Answer(**{**piece.__dict__, "timings": timings, "retrieved": piece.retrieved[:k],
                                "notices": (*notices, *piece.notices, *_language_notice(piece))})
            else:
                yield piece

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


def rules_answerer(settings: Settings, index: Index, embedder: Embedder) -> ExtractiveAnswerer:
    """The rule-based extractive engine with its settings (also what ``assistant calibrate`` gates);
    its score threshold is the setting, or else the calibration file's fitted one."""
    threshold = settings.abstain_threshold
    if threshold is None:
        from .calibration import Calibration

        calibration = Calibration.load(settings.calibration or None)
        if calibration.rules_threshold is None:
            raise AssistantError(f"La calibration {calibration.path} n'a pas de seuil pour les règles : relancez "
                                 "`assistant calibrate` ou donnez le réglage abstain_threshold.")
        threshold = calibration.rules_threshold
    return ExtractiveAnswerer(index, embedder, abstain_threshold=threshold,
                              max_sentences=settings.max_answer_sentences, max_chars=settings.max_answer_chars,
                              unmatched_min_similarity=settings.unmatched_min_similarity,
                              cross_lingual_min_similarity=settings.cross_lingual_min_similarity)


def _language_notice(answer: Answer) -> tuple[str, ...]:
    """An English question answered with quotes in French says so (in English)."""
    quoted = " ".join(q for c in answer.citations for q in c.quotes)
    if answer.abstained or answer.language == "fr" or not quoted or guess_language(quoted) == answer.language:
        return ()
    return ("The quotes are in the language of the documents (French); they are not translated.",)


def _check_engine(settings: Settings) -> None:
    if settings.engine not in ENGINES:
        raise ValueError(f"Moteur inconnu « {settings.engine} » : choisissez parmi {', '.join(ENGINES)}.")
    if settings.answer_scorer not in ANSWER_SCORERS:
        raise ValueError(f"answer_scorer inconnu « {settings.answer_scorer} » : choisissez parmi "
                         f"{', '.join(ANSWER_SCORERS)}.")


def _check_k(k: Any, default: int) -> int:
    if k is None:
        return default
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k doit être un entier positif (reçu {k!r}).")
    return k


def _ms(start: float, end: float) -> float:
    return round((end - start) * 1000, 2)


def _backend(settings: Settings, cache: dict[tuple, Any]) -> Any:
    """The language model for an engine, created once per configuration."""
    from .generation import LlamaCppBackend, OpenAICompatibleBackend

    if settings.engine == "openai":
        key = ("openai", settings.llm_base_url, settings.llm_model)
        if key not in cache:
            cache[key] = OpenAICompatibleBackend(settings.llm_base_url, settings.llm_model, settings.llm_api_key,
                                                 settings.llm_timeout)
        return cache[key]
    from .gguf import assemble

    path = Path(settings.llm_model_path) if settings.llm_model_path else None
    key = ("llm", str(path), settings.llm_context, settings.llm_threads)
    if key not in cache:
        cache[key] = LlamaCppBackend(path or assemble(settings.cache_dir), settings.llm_context,
                                     settings.llm_threads or None)
    return cache[key]
