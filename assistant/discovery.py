"""What a newcomer can learn from the corpus before asking anything, read from whatever is indexed:
per document an overview (title, sections, first sentences), a glossary of the acronyms the
documents define, a timeline of dated sentences, and questions to start with.

Nothing here is written for one document: acronyms are found with the Schwartz-Hearst rule (the
letters of « (CNT) » match, in order, the words just before it: « Conseil national de
transition »), dates with French and English month names. Every item cites its sentence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from itertools import zip_longest
from typing import Iterable

from .types import Citation, Passage
from .chunking import Chunk, Sentence

_MONTHS = {name: n for n, names in enumerate((
    "janvier january", "février fevrier february", "mars march", "avril april", "mai may", "juin june",
    "juillet july", "août aout august", "septembre september", "octobre october", "novembre november",
    "décembre decembre december"), start=1) for name in names.split()}
_MONTH = "|".join(sorted(_MONTHS, key=len, reverse=True))
# « le 18 août 2020 », « 1er janvier 1960 », « en août 2022 », « en 2015 », « August 15, 2022 ».
_DATE = re.compile(rf"\b(?:(?P<day>[0-3]?\d|1er)\s+)?(?:(?P<month>{_MONTH})\s+)?(?P<year>1[5-9]\d\d|20\d\d)\b"
                   rf"|\b(?P<emonth>{_MONTH})\s+(?P<eday>[0-3]?\d),\s+(?P<eyear>1[5-9]\d\d|20\d\d)\b", re.IGNORECASE)
_ACRONYM_IN_BRACKETS = re.compile(r"\(\s*([A-ZÉÈ][A-Za-zÉÈ0-9&\-]{1,11})\s*\)")
_WORD = re.compile(r"[\w’'\-]+")
# A bare four-digit number is a year only after the words that introduce one.
_YEAR_CUE = re.compile(r"\b(?:en|depuis|dès|des|de|du|année|années|avant|après|vers|entre|et|fin|début|"
                       r"jusqu[’']en|in|since|by|from|until|before|after)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class GlossaryEntry:
    acronym: str
    expansion: str
    citation: Citation

    def to_dict(self) -> dict:
        return {"acronym": self.acronym, "expansion": self.expansion, "citation": self.citation.to_dict()}


@dataclass(frozen=True)
class Event:
    date: str  # as written: « 18 août 2020 », « 2015 »
    year: int
    month: int  # 0 when the sentence gives the year only
    day: int
    citation: Citation

    def to_dict(self) -> dict:
        return {"date": self.date, "year": self.year, "month": self.month, "day": self.day,
                "citation": self.citation.to_dict()}


@dataclass(frozen=True)
class DocumentOverview:
    title: str
    source: str
    sections: tuple[str, ...]
    opening: Citation  # the document's first sentences

    def to_dict(self) -> dict:
        return {"title": self.title, "source": self.source, "sections": list(self.sections),
                "opening": self.opening.to_dict()}


@dataclass(frozen=True)
class Discovery:
    documents: tuple[DocumentOverview, ...]
    glossary: tuple[GlossaryEntry, ...]
    timeline: tuple[Event, ...]
    questions: tuple[str, ...] = field(default=())  # each one answered with a citation when asked

    def to_dict(self) -> dict:
        return {"documents": [d.to_dict() for d in self.documents], "glossary": [g.to_dict() for g in self.glossary],
                "timeline": [e.to_dict() for e in self.timeline], "questions": list(self.questions)}


def citation_of(chunk: Chunk, sentences: Iterable[Sentence], number: int = 1) -> Citation:
    """The passage ``chunk`` cited for ``sentences`` (highlighted)."""
    return Citation(number=number, passage=Passage.of_chunk(chunk), score=1.0,
                    highlights=tuple((s.start, s.end) for s in sentences))


def expansion_of(acronym: str, before: str) -> str | None:
    """The long form of ``acronym`` at the end of ``before`` (Schwartz & Hearst, 2003): the shortest
    run of words whose characters hold the acronym's letters in order, the first letter starting a
    word, within min(len + 5, 2 x len) words. None when no such run exists."""
    letters = [c.casefold() for c in acronym if c.isalnum()]
    if len(letters) < 2 or not letters[0].isalpha():
        return None
    tokens = list(_WORD.finditer(before))
    window = tokens[-min(len(letters) + 5, 2 * len(letters)):]
    if not window:
        return None
    text = before[window[0].start():].rstrip()
    folded = text.casefold()
    position = len(folded) - 1
    for n in range(len(letters) - 1, -1, -1):
        letter = letters[n]
        while position >= 0 and (folded[position] != letter or (
                n == 0 and position > 0 and folded[position - 1].isalnum())):
            position -= 1
        if position < 0:
            return None
        position -= 1
    start = position + 1
    expansion = text[start:].strip(" ,;:«»\"'")
    words = expansion.split()
    if len(words) < 2 or acronym.casefold() in expansion.casefold() or expansion.isupper() \
            or re.match(r"(?:de|du|des|la|le|les|l[’']|d[’']|of|the)\b", expansion):
        return None  # « (DSM) » after « … de la sécurité militaire »: the long form started earlier
    return expansion


def dates_in(text: str) -> list[tuple[str, int, int, int]]:
    """(as written, year, month, day) for each date in ``text``."""
    found = []
    for m in _DATE.finditer(text):
        if m.group("eyear"):
            year, month, day = int(m.group("eyear")), _MONTHS[m.group("emonth").casefold()], int(m.group("eday"))
        else:
            year = int(m.group("year"))
            month = _MONTHS[m.group("month").casefold()] if m.group("month") else 0
            if not month and not _YEAR_CUE.search(text[max(0, m.start() - 20):m.start()]):
                continue
            day_text = m.group("day")
            if day_text and not month:  # « 12 2015 » is a number, not a date: keep the year
                found.append((m.group("year"), year, 0, 0))
                continue
            day = 1 if day_text == "1er" else int(day_text) if day_text else 0
        if day > 31:
            continue
        found.append((m.group().strip(), year, month, day))
    return found


class Explorer:
    """Reads an index's passages into a ``Discovery`` (without the suggested questions, which the
    ``Assistant`` checks by asking them)."""

    def __init__(self, max_events: int = 400, opening_sentences: int = 2) -> None:
        self.max_events, self.opening_sentences = max_events, opening_sentences

    def explore(self, chunks: list[Chunk]) -> Discovery:
        ordered = sorted(chunks, key=lambda c: (c.document, c.start))
        documents, glossary, events, seen = [], {}, [], set()
        by_document: dict[str, list[Chunk]] = {}
        for chunk in ordered:
            by_document.setdefault(chunk.document, []).append(chunk)
        for document, parts in by_document.items():
            first = next((c for c in parts if c.sentences), parts[0])
            sections = tuple(dict.fromkeys(c.section for c in parts if c.section))
            documents.append(DocumentOverview(first.title or document, first.source, sections,
                                              citation_of(first, first.sentences[:self.opening_sentences])))
        for chunk in ordered:
            for sentence in chunk.sentences:
                for match in _ACRONYM_IN_BRACKETS.finditer(sentence.text):
                    acronym = match.group(1)
                    if sum(c.isupper() for c in acronym) < 2 or acronym.casefold() in glossary:
                        continue
                    expansion = expansion_of(acronym, sentence.text[:match.start()])
                    if expansion:
                        glossary[acronym.casefold()] = GlossaryEntry(acronym, expansion, citation_of(chunk, [sentence]))
                dates = dates_in(sentence.text)
                if dates and sentence.text not in seen:
                    seen.add(sentence.text)
                    written, year, month, day = min(dates, key=lambda d: d[1:])
                    events.append(Event(written, year, month, day, citation_of(chunk, [sentence])))
        events.sort(key=lambda e: (e.year, e.month, e.day))
        entries = sorted(glossary.values(), key=lambda g: g.acronym.casefold())
        return Discovery(tuple(documents), tuple(entries), tuple(events[:self.max_events]))


def candidate_questions(discovery: Discovery) -> list[str]:
    """Questions a newcomer could start with, taken in turn from the glossary, the timeline and the
    documents' sections (the ``Assistant`` keeps those it answers)."""
    kinds = [[f"Que signifie {entry.acronym} ?" for entry in discovery.glossary],
             [f"Que s'est-il passé {'le' if event.day else 'en'} {event.date} ?" for event in discovery.timeline
              if event.month],
             [f"Que disent les documents sur « {section} » ?" for d in discovery.documents for section in d.sections]]
    mixed = [question for turn in zip_longest(*kinds) for question in turn if question]
    return list(dict.fromkeys(mixed))
