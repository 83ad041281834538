"""Conversation: validating the history and turning follow-up questions into standalone queries.

No LLM is needed: an elliptic or anaphoric question ("Et quand a-t-elle pris fin ?", "Qui l'a
présidée ?") is recognised by its shape (a leading connector, a pronoun or possessive standing for
something named earlier, an inverted subject with nothing named) and completed with the previous
user question and the names in the previous answer. A question that names its own topic is left
alone, so an unrelated history never pollutes it.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Sequence

from .language import pack
from .text import content_stems, fold_accents, function_words, require_utf8, words
from .types import Sentence

ROLES = ("user", "assistant")
_CONNECTOR = re.compile(r"^\s*(et|and|mais|but|puis|also|ou|or|alors|so|what about|how about)\b", re.IGNORECASE)
_ANAPHORS = frozenset(
    "y son sa ses leur leurs lui ce cet cette ces celui celle ceux celles lequel laquelle lesquels lesquelles "
    "it its they them their he she his her this that these those".split()
)
_CLITIC = re.compile(r"\bl['’](a|ont|avait|avaient|est|sont|aura|auront|as|ai)\b", re.IGNORECASE)
_INVERSION = re.compile(r"-(t-)?(il|elle|ils|elles)\b", re.IGNORECASE)
_MARKER = re.compile(r"\s*\[\d+\]")


def _text_of(content: Any) -> str | None:
    """Message content as text: a string, or Gradio-style blocks [{"type": "text", "text": ...}]."""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(isinstance(b, dict) and isinstance(b.get("text", ""), str) for b in content):
        return " ".join(b.get("text", "") for b in content if b.get("type", "text") == "text")
    return None


def validate_history(history: Any) -> list[dict[str, str]]:
    """A clean copy of the history, or ValueError naming the first malformed entry."""
    if history is None:
        return []
    if not isinstance(history, (list, tuple)):
        raise ValueError("history doit être une liste de messages {'role': ..., 'content': ...}.")
    clean = []
    for i, entry in enumerate(history):
        if not isinstance(entry, dict):
            raise ValueError(f"history[{i}] : un message doit être un dictionnaire, pas {type(entry).__name__}.")
        role = entry.get("role")
        if role not in ROLES:
            raise ValueError(f"history[{i}] : 'role' doit valoir 'user' ou 'assistant' (reçu {role!r}).")
        text = _text_of(entry.get("content"))
        if text is None:
            raise ValueError(f"history[{i}] : 'content' doit être du texte.")
        require_utf8(text, f"history[{i}] : 'content'")
        clean.append({"role": role, "content": text})
    return clean


def _capitalised_names(text: str) -> list[str]:
    """Proper names and acronyms (capitalised words that do not start a sentence)."""
    names = []
    for match in re.finditer(r"(?<![.!?]\s)(?<!^)\b([A-ZÀ-Ý][\w-]+(?:\s+[A-ZÀ-Ý][\w-]+)*)", text):
        if match.start() > 0:
            names.append(match.group(1))
    return names


def _meaningful_words(text: str) -> set[str]:
    """Accent-folded words as written, function words and pronouns left out."""
    stop = function_words() | _ANAPHORS
    return {w for w in words(text) if len(w) > 1 and w not in stop}


class FollowUpRewriter:
    """Completes elliptic follow-ups from the earlier turns; leaves standalone questions as they are.

    With ``condense`` (a language model that rewrites the question), its standalone question is used
    when it keeps the user's own words as written and adds a word of the conversation; otherwise the
    rule-based completion below. Words as written, not stems: a small model that turns « Qui l'a
    présidée ? » into « Qui a présidé l'accord ? » has lost the agreement that said who was meant."""

    def __init__(self, condense: Callable[[str, list[dict[str, str]]], str | None] | None = None) -> None:
        self.condense = condense

    def is_follow_up(self, question: str) -> bool:
        words = re.findall(r"\w+", fold_accents(question.casefold()))
        named = bool(_capitalised_names(question))
        topic_words = len(set(content_stems(question)))
        if _CONNECTOR.match(question) or _CLITIC.search(question):
            return True
        if any(w in _ANAPHORS for w in words) and not named:
            return True
        if _INVERSION.search(question) and not named and topic_words <= 2:
            return True
        return topic_words <= 1 and not named

    def rewrite(self, question: str, history: list[dict[str, str]]) -> str:
        if not history or not self.is_follow_up(question):
            return question
        if self.condense is not None:
            condensed = self.condense(question, history)
            conversation = set(content_stems(" ".join(t["content"] for t in history)))
            if condensed and set(content_stems(condensed)) & (conversation - set(content_stems(question))) \
                    and _meaningful_words(question) <= _meaningful_words(condensed):
                return condensed
        users = [turn["content"] for turn in history if turn["role"] == "user"]
        context: list[str] = []
        for previous in reversed(users):  # walk back until a turn that names its topic
            context.insert(0, previous.strip())
            if not self.is_follow_up(previous):
                break
        last_answer = next((t["content"] for t in reversed(history) if t["role"] == "assistant"), "")
        known = fold_accents(" ".join(context + [question]).casefold())
        names = [n for n in dict.fromkeys(_capitalised_names(_MARKER.sub("", last_answer)))
                 if fold_accents(n.casefold()) not in known]
        stripped = _CONNECTOR.sub("", question).strip(" ,")
        stripped = stripped[:1].upper() + stripped[1:]
        return " — ".join([stripped] + context + ([", ".join(names)] if names else []))


# -- « Et ensuite ? »: the document goes on after the previous answer -------------------------------
def is_continuation(question: str) -> bool:
    """A question that only asks what comes next (« Et ensuite ? », « Et après ? », "What next?")."""
    folded = " ".join(re.findall(r"\w+", fold_accents(question.casefold())))
    return any(folded in pack(code).continuations for code in ("fr", "en"))


def continuation_of(previous_answer: str, sentences: Sequence[Sentence]) -> Sentence | None:
    """The sentence that follows, in its document, the last sentence the previous answer quoted
    (sentences in index order: each document's in reading order); None when it quoted none."""
    quoted = [i for i, sentence in enumerate(sentences) if len(sentence.text) > 20 and sentence.text in previous_answer]
    if not quoted:
        return None
    last = sentences[quoted[-1]]
    following = sentences[quoted[-1] + 1] if quoted[-1] + 1 < len(sentences) else None
    return following if following is not None and following.document == last.document else None


# -- greetings, thanks and help: answered without searching ------------------------------------
_POLITE = r"(?:s['’]il (?:te|vous) pla[iî]t|stp|svp|please|beaucoup|bien|à vous|a vous|à toi|a toi|" \
          r"encore|infiniment|so much|a lot|very much|tout le monde|everyone|there|l['’]assistant|assistant)"
_SMALL_TALK = {
    "greeting": re.compile(r"(?:bonjour|bonsoir|salut|coucou|hello|hi|hey|good (?:morning|afternoon|evening)|"
                           r"rebonjour|bonne journée|bonne soirée)(?:\s+" + _POLITE + r")*", re.IGNORECASE),
    "thanks": re.compile(r"(?:(?:super|parfait|génial|genial|ok|d['’]accord|très bien|top|great|perfect|ok)\s*,?\s*)?"
                         r"(?:merci|thanks|thank you|thx|je vous remercie|je te remercie)(?:\s+" + _POLITE + r")*",
                         re.IGNORECASE),
    "help": re.compile(r"(?:aide|aidez-moi|aide-moi|help|help me|comment ça marche|comment ca marche|"
                       r"comment (?:t['’]utiliser|vous utiliser|utiliser l['’]assistant)|mode d['’]emploi|"
                       r"que (?:peux|pouvez|sais|savez)[- ](?:tu|vous)(?: faire)?|qu['’]est-ce que (?:tu peux|vous pouvez) faire|"
                       r"que puis-je (?:te |vous )?demander|quelles questions (?:puis-je|peut-on) poser|"
                       r"qui es-tu|qui êtes-vous|what can you do|how does (?:this|it) work|who are you|"
                       r"what can i ask)(?:\s+" + _POLITE + r")*", re.IGNORECASE),
}
_ENGLISH_TALK = re.compile(r"\b(hello|hi|hey|good|thanks|thank|thx|help|what|how|who|please)\b", re.IGNORECASE)
_FRENCH_TALK = re.compile(r"\b(bonjour|merci|aide|salut|bonsoir|comment|que|qu|quelles|qui)\b", re.IGNORECASE)
_LEADING_GREETING = re.compile(r"^\s*(?:bonjour|bonsoir|salut|coucou|hello|hi|hey)\b[\s,;:!.]*(?=\S)", re.IGNORECASE)


def small_talk(question: str) -> tuple[str, str] | None:
    """(``greeting`` | ``thanks`` | ``help``, ``fr`` | ``en``) when the whole message is one of those
    (punctuation, emoji and politeness aside), else None: such a message is not a question about the
    documents and is not searched."""
    core = re.sub(r"[\s!.,;:…?👋🙏🙂😊👍]+", " ", question).strip()
    if not core:
        return ("help", "fr") if "?" in question else None
    for kind, pattern in _SMALL_TALK.items():
        if pattern.fullmatch(core):
            english = _ENGLISH_TALK.search(core) and not _FRENCH_TALK.search(core)
            return kind, "en" if english else "fr"
    return None


def without_greeting(question: str) -> str:
    """« Bonjour, quand … ? » -> « quand … ? »: a greeting before a question is not part of it."""
    stripped = _LEADING_GREETING.sub("", question)
    return stripped if stripped != question and small_talk(question) is None else question


_REPLIES = {
    "fr": {"scope": "Je réponds uniquement à partir des {n} document(s) indexé(s) ({shown}) ; chaque réponse cite "
                    "le passage d'où elle vient, et si l'information n'y figure pas, je vous le dis.",
           "thanks": "Avec plaisir ! Posez une autre question quand vous voulez.",
           "hello": "Bonjour !", "example": " Par exemple : {asked}.",
           "help": " Posez une question précise (qui, quoi, quand, où, combien…).",
           "discover": " L'onglet « Découvrir » présente les documents, leurs sigles et les dates clés."},
    "en": {"scope": "I answer only from the {n} indexed document(s) ({shown}), and every answer cites the passage "
                    "it comes from; when the documents do not hold the answer, I say so. The quotes are in the "
                    "documents' language (French).",
           "thanks": "You're welcome! Ask another question whenever you like.",
           "hello": "Hello!", "example": " For example: {asked}.",
           "help": " Ask a precise question (who, what, when, where, how many…).",
           "discover": " The « Découvrir » tab lists the documents, their acronyms and key dates."},
}


def small_talk_reply(kind: str, language: str, titles: list[str], examples: list[str]) -> str:
    """What the assistant says to a greeting, thanks or a request for help: what it is, what it
    knows (the documents' titles) and questions it can answer."""
    say = _REPLIES.get(language, _REPLIES["fr"])
    if kind == "thanks":
        return say["thanks"]
    shown = ", ".join(f"« {t} »" for t in titles[:3]) + (" …" if len(titles) > 3 else "")
    scope = say["scope"].format(n=len(titles), shown=shown)
    example = say["example"].format(asked=" ; ".join(f"« {q} »" for q in examples[:2])) if examples else ""
    if kind == "greeting":
        return f"{say['hello']} {scope}{example}"
    return f"{scope}{say['help']}{example}{say['discover']}"
