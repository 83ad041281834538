"""What a question asks for: its language, its expected answer type, and whether it wants a list.

A small question classifier in the tradition of factoid QA systems: the wh-phrase tells which kind
of fact must appear in a sentence for that sentence to be an answer at all ("Quand ..." needs a
date, "Combien de salariés ..." needs a count of salariés, "Comment s'appelle ..." needs a name).
The answer engine uses it to refuse sentences that are on topic but do not hold the fact.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from .answer_types import COUNTED, MONTHS as _MONTHS
from .text import fold_accents, guess_language

# Patterns run on the lower-cased, accent-folded question with ASCII apostrophes.
_TYPE_PATTERNS: tuple[tuple[str, str], ...] = (
    ("contact", r"\b(e-?mail|courriel|telephone|phone|adresse|address|site (web|internet)|website|url)\b"),
    ("amount", r"\b(budget|montant|cout|coute|couteux|financement total|how much|cost|costs|funding amount)\b"),
    ("duration", r"\b(combien de temps|pendant combien|duree|how long|for how many (years|months|days))\b"),
    ("date", r"\b(quand|quelle date|quel jour|quelle annee|quel mois|depuis quand|jusqu'a quand|"
             r"when|what date|which date|what day|which year|what year|which month|since when)\b"),
    ("quantity", r"\b(combien|quel nombre|nombre de|how many|number of)\b"),
    ("organisation", r"\b(bailleurs?|donateurs?|financeurs?|sponsors?|funders?|donors?|qui finance\w*|"
                     r"financ\w* par qui|who funds|funded by whom|who finances)\b"),
    ("name", r"\b(comment s'appelle|comment se nomme|quel est le nom|quel est son nom|nom (complet )?(du|de la|de l'|des)|"
             r"what is the (full )?name|what's the name|who is|who are)\b"),
    ("place", r"\b(quelle ville|dans quel pays|quel pays|quels pays|which city|what city|which countr(y|ies)|"
              r"what countr(y|ies)|in which town)\b"),
)
# Words that frame a question rather than name its topic: never anchors.
_FRAMING = (
    "quand date jour année annee mois combien pendant durée nombre nom appelle appelle-t-il nomme pays ville quel quelle "
    "quels quelles qui que quoi où comment pourquoi lequel laquelle lesquels lesquelles est sont "
    "what when which who whom whose where why how many much name called number date year day month country "
    "countries city is are was were the of did does do"
)
FRAMING_WORDS = frozenset(fold_accents(w) for w in _FRAMING.split())


def is_framing(stem: str) -> bool:
    """Is this stem (from ``text.content_stems``) a question-framing word?"""
    return stem in _framing_stems()


@lru_cache(maxsize=1)
def _framing_stems() -> frozenset[str]:
    from .text import content_stems

    return frozenset(content_stems(_FRAMING)) | FRAMING_WORDS
_PLURAL = re.compile(r"\b(quels|quelles|lesquels|lesquelles|what are|which are|list|liste[rz]?|enumere[rz]?|"
                     r"citez|nommez)\b")

_NUMBER_WORDS = ("deux trois quatre cinq six sept huit neuf dix onze douze treize quatorze quinze seize vingt "
                 "trente quarante cinquante soixante cent cents mille million millions milliard milliards "
                 "dizaine dizaines centaine centaines douzaine "
                 "two three four five six seven eight nine ten eleven twelve twenty thirty hundred thousand").split()
_DATE = re.compile(r"\b(1[5-9]\d\d|20\d\d)\b|\b\d{1,2}(er)? (" + "|".join(_MONTHS) + r")\b|\b(" + "|".join(_MONTHS) + r")\b")
_DATE_STRIP = re.compile(r"\b\d{1,2}(er)? (" + "|".join(_MONTHS) + r")( (1[5-9]\d\d|20\d\d))?\b|\b(1[5-9]\d\d|20\d\d)\b")
_NUMBER = re.compile(r"\b\d[\d  .,]*\b|\b(" + "|".join(_NUMBER_WORDS) + r")\b")
_DURATION = re.compile(r"(\b\d+|\b(" + "|".join(_NUMBER_WORDS) + r"|un|une|one|a))\s+(ans?|annees?|mois|jours?|semaines?|"
                       r"decennies?|siecles?|years?|months?|weeks?|days?|decades?)\b")
_MONEY = re.compile(r"(€|\$|\beuros?\b|\bdollars?\b|\bfcfa\b|\bfrancs?\b|\bchf\b|\busd\b|\beur\b)")
_CONTACT = re.compile(r"@|\bhttps?://|\bwww\.|\+?\d[\d .-]{7,}\d")


@dataclass(frozen=True)
class QuestionProfile:
    language: str  # "fr" | "en"
    answer_type: str | None  # date, duration, quantity, amount, name, place, organisation, contact
    wants_list: bool  # a plural question: an enumeration may be answered whole
    counted_noun: str | None  # "salariés" in "Combien de salariés ...", folded
    focus: tuple[str, ...] = ()  # the first content words after the wh-phrase: what the name is of


def _plain(text: str) -> str:
    return fold_accents(text.casefold()).replace("’", "'").replace("‘", "'")


def profile_question(question: str, focus_words: int = 3) -> QuestionProfile:
    from .text import content_stems

    plain = _plain(question)
    answer_type, match = None, None
    for name, pattern in _TYPE_PATTERNS:
        match = re.search(pattern, plain)
        if match:
            answer_type = name
            break
    counted = COUNTED.search(plain) if answer_type == "quantity" else None
    focus = ()
    if match:
        # Proper names in the question are context ("le siège d'Interpeace"): the name asked for
        # belongs to the common nouns after the wh-phrase.
        names = {w for w, capital, _ in token_spans(question) if capital} - {_plain(question.split()[0])}
        rest = " ".join(w for w in re.findall(r"\w+", plain[match.end():]) if w not in names)
        focus = tuple(s for s in content_stems(rest) if not is_framing(s))[:focus_words]
    return QuestionProfile(language=guess_language(question), answer_type=answer_type,
                           wants_list=bool(_PLURAL.search(plain)),
                           counted_noun=counted.group(1) if counted else None, focus=focus)


def token_spans(text: str) -> list[tuple[str, bool, int]]:
    """Word tokens of ``text``: (folded lower word, capitalised?, position)."""
    return [(_plain(m.group()), m.group()[0].isupper(), m.start()) for m in re.finditer(r"\w+", text)]


def has_type(answer_type: str, text: str) -> bool:
    """Does ``text`` hold a fact of this type at all (dates, counts, money, contact details)?"""
    plain = _plain(text)
    if answer_type == "date":
        return bool(_DATE.search(plain))
    if answer_type == "duration":
        return bool(_DURATION.search(plain))
    if answer_type == "amount":
        return bool(_MONEY.search(plain)) and bool(_NUMBER.search(plain))
    if answer_type == "contact":
        return bool(_CONTACT.search(text))
    if answer_type == "quantity":
        return bool(_NUMBER.search(_DATE_STRIP.sub(" ", plain)))
    return True  # name / place / organisation: checked against capitalised words by the caller


def type_positions(answer_type: str, text: str) -> list[int]:
    """Character positions in ``text`` where a fact of the type starts (for proximity checks)."""
    plain = _plain(text)  # same length as text for Latin scripts: folding removes combining marks only
    pattern = {"date": _DATE, "duration": _DURATION, "amount": _MONEY, "contact": _CONTACT,
               "quantity": _NUMBER}.get(answer_type)
    if pattern is None:
        return []
    source = _DATE_STRIP.sub(lambda m: " " * len(m.group()), plain) if answer_type == "quantity" else plain
    return [m.start() for m in pattern.finditer(source if answer_type != "contact" else text)]
