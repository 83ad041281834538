"""What a question asks for, and which facts a sentence holds: the language-level analysis the
calibrated answer scorer (``evidence.py``) reads its type features from.

A question's wh-phrase tells which kind of fact an answer holds ("Quand ..." a date, "Combien ..."
a number, "Qui ..." a name, "Où ..." a place, "Pourquoi ..." a cause). These are general French
and English word lists, not rules: the scorer learns from data how much a missing fact of the
expected kind counts against a sentence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .text import fold_accents, guess_language

ANSWER_TYPES = ("date", "quantity", "name", "place", "reason", "contact")

# Patterns run on the lower-cased, accent-folded question with ASCII apostrophes. "où" is looked
# for before folding (folded, it is "ou": or).
_WHERE = re.compile(r"(^|[\s,'])(où|d'où|where)\b")
_TYPE_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple((name, re.compile(pattern)) for name, pattern in (
    ("date", r"\b(quand|depuis quand|jusqu'a quand|a partir de quand|a quelle (date|epoque|periode|heure)|"
             r"(en|dans|de|a|pour|vers) quel(le)?s? (annee|siecle|mois|jour|decennie|periode|epoque)|"
             r"quel(le)?s? (est|etait|fut|sont|etaient) (la|l') ?(date|annee|epoque)|quel(le)? (date|annee|jour)|"
             r"when|what (year|date|day|month|century|time)|which (year|date|day|month|century)|since when)\b"),
    ("quantity", r"\b(combien|quel nombre|nombre de|quel(le)?s? (est|etait|sont|fut)? ?(le|la|l')? ?"
                 r"(age|pourcentage|montant|prix|cout|taille|superficie|hauteur|longueur|largeur|distance|"
                 r"population|proportion|somme|duree|vitesse|altitude|profondeur|surface|temperature|poids|"
                 r"masse|volume|capacite|effectif|nombre|part|taux|score|salaire|budget)|"
                 r"how (many|much|long|old|far|big|tall|large)|what (percentage|proportion|amount|number))\b"),
    ("name", r"(^|[\s,'])(qui|par qui|de qui|a qui|pour qui|avec qui|who|whom|whose)\b|"
             r"\b(comment (s'appel\w*|se nomm\w*|s'intitul\w*)|quel(le)?s? (est|etait|fut|sont) (le|les) noms?|"
             r"sous quel nom|what (is|was|are) the names?|what's the name|how is \w+ called)\b"),
    ("place", r"\b((dans|de|en|a|vers|sur) quel(le)?s? (pays|ville|region|lieu|endroit|continent|departement|"
              r"province|commune|quartier|ile|etat|territoire)|quel(le)?s? (pays|ville|region|lieu|endroit|continent)|"
              r"quel(le)?s? (est|etait|sont|fut) (le|la|les|l') ?(pays|ville|region|lieu|endroit|continent)|"
              r"which (country|city|town|region|place)|what (country|city|town|region|place))\b"),
    ("reason", r"\b(pourquoi|pour quelle raison|pour quelles raisons|why|for what reason)\b"),
    ("contact", r"\b(e-?mail|courriel|adresse (electronique|mail|postale|web|internet)|(numero de )?telephone|"
                r"site (web|internet)|website|phone( number)?|url)\b"),
))
# "qui" also starts relative clauses ("la ville qui ..."): it asks who only among the first words.
_ASKING_WORDS = 3
# Interrogative words frame a question; they name nothing an answer sentence would repeat.
QUESTION_WORDS = frozenset(
    "quel quelle quels quelles qui que quoi quand comment pourquoi combien ou lequel laquelle lesquels "
    "lesquelles est-ce what who whom whose when where which why how".split())
_PLURAL = re.compile(r"\b(quels|quelles|lesquels|lesquelles|what are|which are|list|liste[rz]?|enumere[rz]?|"
                     r"citez|nommez)\b")

MONTHS = ("janvier fevrier mars avril mai juin juillet aout septembre octobre novembre decembre "
           "january february march april may june july august september october november december").split()
_NUMBER_WORDS = ("deux trois quatre cinq six sept huit neuf dix onze douze treize quatorze quinze seize vingt "
                 "trente quarante cinquante soixante cent cents mille million millions milliard milliards "
                 "dizaine dizaines centaine centaines douzaine moitie tiers quart "
                 "two three four five six seven eight nine ten eleven twelve twenty thirty forty fifty hundred "
                 "thousand million billion half").split()
_DATE = re.compile(r"\b(\d{1,2}(er)? )?(" + "|".join(MONTHS) + r")( \d{3,4})?\b|\b(1\d{3}|20\d{2})\b|\b[ivxlc]+e siecles?\b|\bsiecles?\b|"
                   r"\b\d{1,4} (av|avant|apres|apr)\b|\b(en|vers|des|depuis|jusqu'en|in|since) \d{2,4}\b")
_NUMBER = re.compile(r"\b\d+(?:[.,  ]\d+)*\b|\b(" + "|".join(_NUMBER_WORDS) + r")\b")
_CAUSE = re.compile(r"\b(car|parce qu|parce que|puisque|en raison d|a cause d|grace a|afin d|afin que|pour que|"
                    r"du fait d|etant donne|c'est pourquoi|because|due to|owing to|so that|in order to)\b")
_CONTACT = re.compile(r"@\w|\bhttps?://|\bwww\.|\+?\d[\d .-]{7,}\d")
COUNTED = re.compile(r"\b(?:combien d[e']|nombre d[e']|how many|number of)\s*(\w+)")
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class QuestionProfile:
    language: str  # "fr" | "en"
    answer_type: str | None  # one of ANSWER_TYPES, or None (what / how questions: any fact)
    wants_list: bool  # a plural question: an enumeration may be answered whole
    counted: str | None = None  # "soldats" in "Combien de soldats ...": what the number must count


def plain(text: str) -> str:
    """Lower-cased, accent-folded, ASCII apostrophes: what the patterns read."""
    return fold_accents(text.casefold()).replace("’", "'").replace("‘", "'")


def profile_question(question: str) -> QuestionProfile:
    folded = plain(question)
    answer_type = None
    found = [(m.start(), name) for name, pattern in _TYPE_PATTERNS for m in [pattern.search(folded)]
             if m and (name != "name" or len(folded[:m.start()].split()) < _ASKING_WORDS or "qui" not in m.group())]
    where = _WHERE.search(question.casefold().replace("’", "'"))
    if where:
        found.append((where.start(), "place"))
    if found:  # the earliest wh-phrase frames the question ("Qui ... en quelle année" asks who)
        answer_type = min(found)[1]
    counted = COUNTED.search(folded) if answer_type == "quantity" else None
    return QuestionProfile(language=guess_language(question), answer_type=answer_type,
                           wants_list=bool(_PLURAL.search(folded)), counted=counted.group(1) if counted else None)


# The kind of fact each question type asks for.
FACT_OF_TYPE = {"date": "date", "quantity": "number", "name": "name", "place": "name", "reason": "cause",
                "contact": "contact"}
Fact = tuple[str, tuple[str, ...], int]  # kind (date, number, name, cause, contact), its words, word index


def sentence_facts(sentence: str) -> tuple[Fact, ...]:
    """Dates, numbers, proper names and causal phrases stated in ``sentence`` (computed once per
    sentence at load time; ``new_facts`` keeps those a given question lacks)."""
    folded = plain(sentence)
    tokens = list(_WORD.finditer(sentence))
    starts = [m.start() for m in tokens]

    def word_index(position: int) -> int:
        return max(0, next((i for i, s in enumerate(starts) if s > position), len(starts)) - 1)

    facts: list[Fact] = []
    dates = list(_DATE.finditer(folded))
    in_date = lambda m: any(d.start() <= m.start() < d.end() for d in dates)  # noqa: E731 - a year is no count
    for kind, matches in (("date", dates), ("number", [m for m in _NUMBER.finditer(folded) if not in_date(m)]),
                          ("cause", list(_CAUSE.finditer(folded))), ("contact", list(_CONTACT.finditer(sentence)))):
        facts += [(kind, tuple(_WORD.findall(m.group())), word_index(m.start())) for m in matches]
    facts += [("name", (plain(m.group()),), i) for i, m in enumerate(tokens)
              if i > 0 and m.group()[:1].isupper() and len(m.group()) > 1]
    return tuple(facts)


@dataclass(frozen=True)
class Facts:
    """The facts of a sentence that a question does not already contain."""

    positions: dict[str, tuple[int, ...]]  # kind -> word indexes of the new facts of that kind

    def of(self, answer_type: str | None) -> tuple[int, ...]:
        """Where the facts of the kind a question type asks for stand."""
        return self.positions.get(FACT_OF_TYPE.get(answer_type or "", ""), ())

    def count(self, kind: str) -> int:
        return len(self.positions.get(kind, ()))


def new_facts(facts: tuple[Fact, ...], question_words: frozenset[str]) -> Facts:
    fresh = [(kind, index) for kind, words, index in facts
             if kind in ("cause", "contact") or any(w not in question_words for w in words)]
    positions: dict[str, list[int]] = {}
    for kind, index in fresh:
        positions.setdefault(kind, []).append(index)
    return Facts({kind: tuple(indexes) for kind, indexes in positions.items()})


def question_words(text: str) -> frozenset[str]:
    """The question's words as ``new_facts`` compares them (folded, lower case)."""
    return frozenset(_WORD.findall(plain(text)))
