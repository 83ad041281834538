"""Structure-aware chunking: sections, paragraphs, lists and sentences, with exact offsets.

Plain-text layout is read from its shape, not from known heading names: a heading is a short
standalone line without closing punctuation (or a markdown ``#`` line); a run of standalone lines
that do not end a sentence is a list (its items are kept together: they are an enumeration).
Chunks never cross a section, end on sentence boundaries, and are measured with the embedding
model's own tokenizer, prompt and context header included.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Callable

from .corpus import Document
from .types import Sentence

# Bump when the splitting rules change: built indexes record it and are rebuilt.
CHUNKER_VERSION = 5  # 4: long unpunctuated lines are prose, not list items; 5: chunks carry their page
_BLOCK = re.compile(r"[^\n]*\S[^\n]*(?:\n[^\n]*\S[^\n]*)*")  # consecutive non-blank lines
_MD_HEADING = re.compile(r"^#{1,6}\s+")
_MD_ITEM = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+")
_SENTENCE_END = re.compile(r"[.!?;:,]$")
_ELLIPSIS = re.compile(r"(\.\.\.|…)$")
# An enumeration item is short: a longer line without closing punctuation is prose that lacks it.
_ITEM_MAX_WORDS = 40


@dataclass(frozen=True)
class Chunk:
    id: str
    document: str
    title: str
    source: str
    section: str
    paragraph: int  # index of the chunk's first paragraph in the document
    start: int
    end: int
    text: str
    sentences: tuple[Sentence, ...]
    page: int | None = None  # PDF: the page the chunk is on (chunks never cross a page)
    url: str | None = None  # the document's web address, when its metadata gives one

    @property
    def context_header(self) -> str:
        """What the embedding and BM25 see before the text: where the passage sits."""
        return _header(self.title, self.section)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["sentences"] = [s.to_dict() for s in self.sentences]
        return data


@dataclass(frozen=True)
class _Paragraph:
    section: str
    index: int
    spans: tuple[tuple[int, int], ...]  # sentence offsets
    is_list: bool


@lru_cache(maxsize=1)
def _punkt():
    """NLTK's French Punkt model (shipped inside llama-index-core, so no download)."""
    from pathlib import Path

    import llama_index.core
    from nltk.tokenize.punkt import PunktParameters, PunktSentenceTokenizer

    base = Path(llama_index.core.__file__).parent / "_static/nltk_cache/tokenizers/punkt_tab/french"
    params = PunktParameters()
    params.abbrev_types = set((base / "abbrev_types.txt").read_text(encoding="utf-8").split("\n")) - {""}
    params.collocations = {tuple(line.split(" ", 1)) for line in
                           (base / "collocations.tab").read_text(encoding="utf-8").splitlines() if " " in line}
    params.sent_starters = set((base / "sent_starters.txt").read_text(encoding="utf-8").split("\n")) - {""}
    for line in (base / "ortho_context.tab").read_text(encoding="utf-8").splitlines():
        word, _, flag = line.partition("\t")
        if flag:
            params.ortho_context[word] = int(flag)
    return PunktSentenceTokenizer(params)


def sentence_spans(text: str, offset: int = 0) -> list[tuple[int, int]]:
    """Sentence offsets in ``text`` (shifted by ``offset``), whitespace trimmed."""
    spans = []
    for start, end in _punkt().span_tokenize(text):
        piece = text[start:end]
        lead = len(piece) - len(piece.lstrip())
        trail = len(piece) - len(piece.rstrip())
        if end - trail > start + lead:
            spans.append((offset + start + lead, offset + end - trail))
    return spans


class Chunker:
    """Splits a document into section-bound chunks of whole sentences."""

    def __init__(self, count_tokens: Callable[[str], int], target_tokens: int = 200,
                 max_tokens: int = 512, heading_max_words: int = 4) -> None:
        self.count_tokens = count_tokens
        self.target_tokens = min(target_tokens, max_tokens)
        self.max_tokens = max_tokens
        self.heading_max_words = heading_max_words

    # -- layout ---------------------------------------------------------------------------
    def _is_heading(self, line: str) -> bool:
        if _MD_HEADING.match(line):
            return True
        stripped = line.strip()
        return (len(stripped.split()) <= self.heading_max_words and len(stripped) <= 80
                and not _SENTENCE_END.search(stripped) and any(c.isalpha() for c in stripped)
                and not _MD_ITEM.match(stripped))

    @staticmethod
    def _is_item(line: str) -> bool:
        stripped = line.strip()
        if _MD_ITEM.match(stripped):
            return True
        return len(stripped.split()) <= _ITEM_MAX_WORDS and (
            not _SENTENCE_END.search(stripped) or bool(_ELLIPSIS.search(stripped)))

    def _paragraphs(self, document: Document) -> list[_Paragraph]:
        text = document.text
        section, paragraphs = "", []
        pending_items: list[tuple[int, int]] = []

        def flush_items() -> None:
            if pending_items:
                paragraphs.append(_Paragraph(section, len(paragraphs), tuple(pending_items), True))
                pending_items.clear()

        for match in _BLOCK.finditer(text, document.body_start):
            lines = [(m.start(), m.end()) for m in re.finditer(r"[^\n]*\S[^\n]*", match.group())]
            lines = [(match.start() + a, match.start() + b) for a, b in lines]
            if len(lines) == 1 and self._is_heading(text[lines[0][0]:lines[0][1]]):
                flush_items()
                section = _MD_HEADING.sub("", text[lines[0][0]:lines[0][1]]).strip()
                continue
            if all(self._is_item(text[a:b]) for a, b in lines):
                pending_items.extend(_trim(text, a, b) for a, b in lines)
                continue
            flush_items()
            spans = sentence_spans(text[match.start():match.end()], match.start())
            paragraphs.append(_Paragraph(section, len(paragraphs), tuple(spans), False))
        flush_items()
        return paragraphs

    # -- packing --------------------------------------------------------------------------
    def _tokens(self, header: str, text: str) -> int:
        return self.count_tokens(header + text)

    def _fit_sentence(self, text: str, header: str, start: int, end: int) -> list[tuple[int, int]]:
        """A sentence longer than the model window is cut at spaces (rare: tables, lists)."""
        total = self._tokens(header, text[start:end])
        if total <= self.max_tokens:
            return [(start, end)]
        # Each piece starts from a guess sized by the sentence's own characters per token, so only
        # about one window of text is tokenised per piece: linear in the sentence's length.
        window = max(1, int((end - start) / total * self.max_tokens * 1.1))
        pieces, cursor = [], start
        while cursor < end:
            cut = min(end, cursor + window)
            while self._tokens(header, text[cursor:cut]) > self.max_tokens:
                space = text.rfind(" ", cursor + 1, cursor + (cut - cursor) * 9 // 10)
                cut = space if space > cursor else cursor + max(1, (cut - cursor) * 9 // 10)
            if cut < end:  # end the piece at a space when there is one
                space = text.rfind(" ", cursor + 1, cut + 1)
                cut = space if space > cursor else cut
            pieces.append(_trim(text, cursor, cut))
            cursor = cut
            while cursor < end and text[cursor].isspace():
                cursor += 1
        return pieces

    def split(self, document: Document) -> list[Chunk]:
        text = document.text
        groups: list[tuple[str, list[_Unit]]] = []  # one per chunk: section, sentence units

        for para in self._paragraphs(document):
            header = _header(document.title, para.section)
            units = [_Unit(a, b, para.index, para.is_list)
                     for start, end in para.spans for a, b in self._fit_sentence(text, header, start, end)]
            # Lists stay whole when they fit the window; prose packs up to the target size.
            limit = self.max_tokens if para.is_list else self.target_tokens
            pieces: list[list[_Unit]] = []
            for unit in units:
                if pieces and self._tokens(header, text[pieces[-1][0].start:unit.end]) <= limit:
                    pieces[-1].append(unit)
                else:
                    pieces.append([unit])
            # A short tail (a lone closing sentence) is worth more with its paragraph than alone,
            # as long as the whole still fits the model's window.
            if len(pieces) > 1 and self._tokens(header, text[pieces[-1][0].start:pieces[-1][-1].end]) \
                    < self.target_tokens // 3 and self._tokens(
                        header, text[pieces[-2][0].start:pieces[-1][-1].end]) <= self.max_tokens:
                pieces[-2].extend(pieces.pop())
            for n, piece in enumerate(pieces):
                previous = groups[-1] if groups else None
                same_kind = previous and previous[1][-1].in_list == para.is_list  # lists keep their own chunk
                same_page = previous and document.page_at(previous[1][0].start) == document.page_at(piece[0].start)
                if n == 0 and previous and same_kind and same_page and previous[0] == para.section and \
                        self._tokens(header, text[previous[1][0].start:piece[-1].end]) <= self.target_tokens:
                    previous[1].extend(piece)  # small neighbouring paragraphs of a section share a chunk
                else:
                    groups.append((para.section, piece))

        chunks = []
        for number, (section, units) in enumerate(groups):
            chunk_id = f"{document.id}#{number}"
            sentences = tuple(
                Sentence(id=f"{chunk_id}.{i}", chunk_id=chunk_id, document=document.id, section=section,
                         paragraph=u.paragraph, start=u.start, end=u.end, text=text[u.start:u.end],
                         in_list=u.in_list)
                for i, u in enumerate(units)
            )
            start, end = units[0].start, units[-1].end
            chunks.append(Chunk(id=chunk_id, document=document.id, title=document.title,
                                source=document.source, section=section, paragraph=units[0].paragraph,
                                start=start, end=end, text=text[start:end], sentences=sentences,
                                page=document.page_at(start), url=document.url))
        return chunks


@dataclass(frozen=True)
class _Unit:
    start: int
    end: int
    paragraph: int
    in_list: bool


def _header(title: str, section: str) -> str:
    return f"{title} › {section}\n" if section else f"{title}\n"


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def enumerations(sentences: tuple[Sentence, ...]) -> list[tuple[Sentence, ...]]:
    """The enumerations among a chunk's sentences (consecutive items of one paragraph)."""
    groups: dict[int, list[Sentence]] = {}
    for sentence in sentences:
        if sentence.in_list:
            groups.setdefault(sentence.paragraph, []).append(sentence)
    return [tuple(items) for items in groups.values() if len(items) > 1]
