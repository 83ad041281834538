"""From a selection to an ``Answer``: the quoted units as text with ``[n]`` markers, one citation
per passage with the quoted sentences highlighted, or the abstention sentence. Shared by every
engine (the generative one composes its verified statements the same way)."""

from __future__ import annotations

import re
import time
from dataclasses import replace
from typing import Sequence

from ..language import pack
from ..selectors.base import Selection, Unit
from ..types import Answer, Citation, Passage

ABSTENTION = {code: pack(code).strings["abstention"] for code in ("fr", "en")}
_LEADING_CONNECTOR = re.compile(
    r"^(cependant|toutefois|néanmoins|par ailleurs|en outre|de plus|ainsi|alors|mais|et|or|"
    r"however|moreover|furthermore|also|and|but)\s*,?\s+", re.IGNORECASE)

Pieces = list[tuple[str, list[Unit]]]


def abstention(selection: Selection, engine: str, started: float, notices: tuple[str, ...] = (),
               passages: Sequence[Passage] | None = None) -> Answer:
    """The abstention answer (in the question's language), nothing cited."""
    return Answer(text=ABSTENTION[selection.language], citations=(), abstained=True, query=selection.query,
                  question=selection.question, language=selection.language, engine=engine,
                  timings={"answer_ms": elapsed_ms(started)},
                  retrieved=tuple(selection.passages if passages is None else passages), notices=notices)


def compose(selection: Selection, pieces: Pieces, engine: str, started: float, notices: tuple[str, ...] = (),
            passages: Sequence[Passage] | None = None) -> Answer:
    """An answer from (text, units it cites) pieces: markers numbered by first use, one citation
    per passage, the cited sentences highlighted."""
    numbers: dict[str, int] = {}
    highlights: dict[str, set[tuple[int, int]]] = {}
    by_chunk: dict[str, Unit] = {}
    rendered = []
    for text, units in pieces:
        marks = []
        for unit in units:
            chunk_id = unit.passage.chunk_id
            number = numbers.setdefault(chunk_id, len(numbers) + 1)
            highlights.setdefault(chunk_id, set()).update((s.start, s.end) for s in unit.sentences)
            by_chunk.setdefault(chunk_id, unit)
            if number not in marks:
                marks.append(number)
        markers = "".join(f"[{n}]" for n in marks)
        rendered.append(f"\n{text} {markers}\n" if text.startswith("- ") else f"{text} {markers}")
    citations = tuple(
        Citation(number=number, passage=by_chunk[cid].passage, score=by_chunk[cid].score,
                 highlights=tuple(sorted(highlights[cid])))
        for cid, number in numbers.items()
    )
    text = re.sub(r"\n{3,}", "\n\n", " ".join(rendered)).strip()
    text = re.sub(r" *\n *", "\n", text)
    return Answer(text=text, citations=citations, abstained=False, query=selection.query,
                  question=selection.question, language=selection.language, engine=engine,
                  timings={"answer_ms": elapsed_ms(started)},
                  retrieved=tuple(selection.passages if passages is None else passages), notices=notices)


def quoted_answer(selection: Selection, engine: str, started: float) -> Answer:
    """The selection quoted as it is (the extractive answer), its asked fact marked, with the
    selector's confidence and certainty; or the abstention. An unsure selection reads as the closest
    passage, said to be so."""
    graded = {"confidence": selection.confidence, "certainty": selection.certainty}
    if selection.abstained:
        return replace(abstention(selection, engine, started), **graded)
    pieces = unsure_pieces(selection) if selection.certainty == "unsure" else extractive_pieces(list(selection.units))
    answer = compose(selection, pieces, engine, started)
    spans = selection.mark(answer.text) if selection.mark is not None else ()
    return replace(answer, spans=spans, **graded)


def unsure_pieces(selection: Selection) -> Pieces:
    """« Je ne suis pas certain ; voici le passage le plus proche : « … » »: the selected sentences
    verbatim, in reading order, as one quote."""
    units = reading_order(list(selection.units))
    quoted = " ".join(s.text for unit in units for s in unit.sentences)
    return [(f"{pack(selection.language).strings['unsure']} « {quoted} »", units)]


def unit_text(unit: Unit) -> str:
    """How a unit reads in an answer: the sentence (leading connector trimmed) or the list."""
    if unit.is_list:
        return "\n".join(f"- {s.text}" for s in unit.sentences)
    return _trim_connector(unit.sentences[0].text)


def reading_order(units: list[Unit]) -> list[Unit]:
    return sorted(units, key=lambda unit: (unit.passage.source, unit.sentences[0].start))


def extractive_pieces(units: list[Unit]) -> Pieces:
    """The units in reading order, each quoting itself."""
    return [(unit_text(unit), [unit]) for unit in reading_order(units)]


def _trim_connector(sentence: str) -> str:
    trimmed = _LEADING_CONNECTOR.sub("", sentence, count=1)
    if trimmed is sentence or not trimmed:
        return sentence
    return trimmed[0].upper() + trimmed[1:]


def elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
