"""The domain objects a question's answer is made of, in one place: ``Sentence`` (a sentence of an
indexed passage, with its offsets), ``Passage`` (a retrieved passage), ``Citation`` (a passage
cited by an answer, with the sentences it quotes) and ``Answer``.

All are frozen; change one with ``dataclasses.replace``. ``to_dict()`` gives plain JSON-ready data
(what the CLI's ``--json``, the web API and the exports show). No framework type appears here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Sentence:
    """A sentence of an indexed passage: ``source_text[start:end] == text``."""

    id: str
    chunk_id: str
    document: str
    section: str
    paragraph: int
    start: int
    end: int
    text: str
    in_list: bool  # an item of an enumeration

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk: its verbatim text and where it sits in the source file."""

    chunk_id: str
    text: str
    document: str
    title: str
    source: str
    section: str
    start: int
    end: int
    score: float  # the ranking key: the fused score, or the reranker's probability (reranking.py)
    dense_score: float  # cosine between the query and the passage
    bm25_score: float
    page: int | None = None  # PDF page (None for other formats)
    url: str | None = None  # the document's web address, when known

    @classmethod
    def of_chunk(cls, chunk: Any, score: float = 1.0, dense_score: float = 0.0, bm25_score: float = 0.0) -> "Passage":
        """The passage of an indexed chunk (``chunking.Chunk``), with the given scores."""
        return cls(chunk_id=chunk.id, text=chunk.text, document=chunk.document, title=chunk.title,
                   source=chunk.source, section=chunk.section, start=chunk.start, end=chunk.end, score=score,
                   dense_score=dense_score, bm25_score=bm25_score, page=chunk.page, url=chunk.url)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Citation:
    """A passage an answer cites as ``[number]``, with the offsets (in its source file) of the
    sentences it quotes. The passage is held whole; its fields read through."""

    number: int
    passage: Passage
    score: float  # how well the cited sentences answer (the selector's score)
    highlights: tuple[tuple[int, int], ...] = ()  # offsets of the cited sentences in the source

    # The cited passage's own fields, read through (a citation is about its passage).
    @property
    def text(self) -> str:
        return self.passage.text  # verbatim: source_text[start:end]

    @property
    def document(self) -> str:
        return self.passage.document

    @property
    def title(self) -> str:
        return self.passage.title

    @property
    def source(self) -> str:
        return self.passage.source

    @property
    def section(self) -> str:
        return self.passage.section

    @property
    def start(self) -> int:
        return self.passage.start

    @property
    def end(self) -> int:
        return self.passage.end

    @property
    def page(self) -> int | None:
        return self.passage.page

    @property
    def url(self) -> str | None:
        return self.passage.url

    @property
    def quotes(self) -> list[str]:
        """The cited sentences themselves."""
        return [self.text[a - self.start:b - self.start] for a, b in self.highlights]

    def to_dict(self) -> dict:
        return {"number": self.number, "text": self.text, "document": self.document, "title": self.title,
                "source": self.source, "section": self.section, "start": self.start, "end": self.end,
                "score": self.score, "highlights": [list(h) for h in self.highlights], "page": self.page,
                "url": self.url, "quotes": self.quotes}


@dataclass(frozen=True)
class Answer:
    text: str
    citations: tuple[Citation, ...]
    abstained: bool
    query: str  # the standalone query that was searched
    question: str
    language: str
    engine: str
    timings: dict = field(default_factory=dict)  # milliseconds per stage
    retrieved: tuple[Passage, ...] = ()
    notices: tuple[str, ...] = ()  # e.g. "question truncated"
    spans: tuple[tuple[int, int], ...] = ()  # the answer itself inside ``text`` (a date, a name...)
    confidence: float | None = None  # calibrated probability that the corpus answers (calibrated scorer)
    conversational: bool = False  # a reply to a greeting, thanks or a request for help: nothing was searched
    # How sure the answer is, for selectors that grade their answers (``reader``): "sure", "unsure"
    # (the closest passage, shown as such) or "abstained"; None otherwise.
    certainty: str | None = None

    @property
    def markdown(self) -> str:
        """``text`` with the answer spans in bold (``**240**``)."""
        out, cursor = [], 0
        for start, end in self.spans:
            out += [self.text[cursor:start], "**", self.text[start:end], "**"]
            cursor = end
        return "".join(out) + self.text[cursor:]

    def to_dict(self) -> dict:
        return {
            "text": self.text, "citations": [c.to_dict() for c in self.citations],
            "abstained": self.abstained, "query": self.query, "question": self.question,
            "language": self.language, "engine": self.engine, "timings": dict(self.timings),
            "retrieved": [p.to_dict() for p in self.retrieved], "notices": list(self.notices),
            "spans": [list(s) for s in self.spans], "markdown": self.markdown, "confidence": self.confidence,
            "conversational": self.conversational, "certainty": self.certainty,
        }
