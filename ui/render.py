"""HTML for the page, built from ``Answer.to_dict()`` and the index's passages. No Gradio here.

Every string a user or a document supplies goes through ``html.escape`` before it is placed in
markup, so a question or a passage holding ``<script>``, ``<img onerror=...>``, raw HTML or
markdown is shown as the characters it is. The chat renders messages as HTML (not markdown), so
markdown syntax has no effect either.
"""

from __future__ import annotations

import hashlib
import html
import re
from collections import OrderedDict
from typing import Any, Iterable

from .files import document_link

_MARKER = re.compile(r"\[(\d+)\]")
# What an answer's frame says, in the question's language (the interface itself is French).
LABELS = {
    "fr": {"hint": "Essayez de reformuler votre question (d'autres mots, un nom, une date, un lieu du document), "
                   "ou contactez le gestionnaire du programme Mali pour cette information.",
           "source": "Source", "sources": "Sources", "paragraph": "Voir le paragraphe entier",
           "characters": "caractères", "page": "p.", "open_page": "ouvrir la page", "open_document": "ouvrir le document"},
    "en": {"hint": "Try rephrasing your question (other words, a name, a date, a place from the documents), "
                   "or contact the Mali programme manager for this information.",
           "source": "Source", "sources": "Sources", "paragraph": "Show the whole paragraph",
           "characters": "characters", "page": "p.", "open_page": "open the page", "open_document": "open the document"},
}
CONTACT_HINT = LABELS["fr"]["hint"]


def esc(text: Any) -> str:
    """Text as inert HTML: escaped, line breaks kept."""
    return html.escape(str(text), quote=True).replace("\r\n", "\n").replace("\n", "<br>")


def location(title: str, section: str) -> str:
    return f"{title} › {section}" if section else title


# -- chat messages -----------------------------------------------------------------------------
def user_html(question: str, limit: int | None = None) -> str:
    """The question as sent; past ``limit`` characters (what the assistant reads), the rest is folded."""
    if limit is None or len(question) <= limit:
        return f'<div class="ia-question">{esc(question)}</div>'
    return (f'<div class="ia-question">{esc(question[:limit])}<span class="ia-cut">…</span>'
            f'<p class="ia-notice">Seuls les {limit} premiers caractères (sur {len(question)}) ont été lus.</p></div>')


def pending_html(text: str = "") -> str:
    """An answer being written (streaming) or not started yet."""
    body = esc(text) if text else '<span class="ia-wait">Recherche dans les documents</span>'
    return f'<div class="ia-answer ia-streaming">{body}<span class="ia-typing">…</span></div>'


def error_html(message: str) -> str:
    return f'<div class="ia-error">⚠ {esc(message)}</div>'


def answer_html(answer: dict) -> str:
    """The final answer: text with its [n] markers, then the collapsible sources (or the abstention)."""
    labels = LABELS.get(answer.get("language", "fr"), LABELS["fr"])
    notices = "".join(f'<p class="ia-notice"><span aria-hidden="true">⚠</span> {esc(n)}</p>'
                      for n in answer.get("notices", []))
    if answer.get("conversational"):
        return f'<div class="ia-answer ia-final ia-talk">{esc(answer.get("text", ""))}</div>{notices}'
    if answer.get("abstained"):
        return (f'<div class="ia-abstention ia-final"><p class="ia-abstention-text">{esc(answer.get("text", ""))}</p>'
                f'<p class="ia-hint">{esc(labels["hint"])}</p></div>{notices}')
    citations = answer.get("citations", [])
    where = {c["number"]: location(c.get("title", ""), c.get("section", "")) for c in citations}
    # Several answers share a page: their sources' anchors differ by a key drawn from the answer.
    key = hashlib.sha1(f'{answer.get("question", "")}\n{answer.get("text", "")}'.encode("utf-8", "replace")).hexdigest()[:8]

    def marker(match: re.Match) -> str:
        number = int(match.group(1))
        title = f' title="{html.escape(where[number], quote=True)}"' if number in where else ""
        if number not in where:
            return f'<span class="ia-marker">[{number}]</span>'
        return f'<a class="ia-marker" href="#ia-src-{key}-{number}"{title}>[{number}]</a>'

    raw, pieces, cursor = answer.get("text", ""), [], 0
    for start, end in answer.get("spans") or []:  # the asked fact inside the quoted sentence
        pieces += [esc(raw[cursor:start]), f'<strong class="ia-span">{esc(raw[start:end])}</strong>']
        cursor = end
    pieces.append(esc(raw[cursor:]))
    text = _MARKER.sub(marker, "".join(pieces))
    return f'<div class="ia-answer ia-final">{text}</div>{notices}{sources_html(citations, labels, key)}'


def marked_passage(citation: dict) -> str:
    """The whole cited passage, its cited sentences in <mark>."""
    text, start = citation.get("text", ""), citation.get("start", 0)
    out, cursor = [], 0
    for a, b in sorted(tuple(h) for h in citation.get("highlights", [])):
        a, b = max(a - start, cursor), min(b - start, len(text))
        if a >= b:
            continue
        out.append(esc(text[cursor:a]))
        out.append(f"<mark>{esc(text[a:b])}</mark>")
        cursor = b
    out.append(esc(text[cursor:]))
    return "".join(out)


def original_link(citation: dict, labels: dict | None = None) -> str:
    """A link to what the passage was taken from: the document's web address, else its file (at the page)."""
    labels = labels or LABELS["fr"]
    if re.match(r"https?://", str(citation.get("url") or "")):  # never javascript: or data:
        href, label = citation["url"], labels["open_page"]
    elif citation.get("source"):
        href, label = document_link(citation["source"], citation.get("page")), labels["open_document"]
    else:
        return ""
    return (f'<a class="ia-open" href="{html.escape(href, quote=True)}" target="_blank" '
            f'rel="noopener noreferrer">{label}</a>')


def sources_html(citations: Iterable[dict], labels: dict | None = None, key: str = "") -> str:
    """The numbered sources: title › section, page, a link to the original, the quoted sentences, the
    whole paragraph on demand. Each item is the target of its ``[n]`` marker (``#ia-src-<key>-<n>``)."""
    labels = labels or LABELS["fr"]
    citations = list(citations)
    if not citations:
        return ""
    items = []
    for c in citations:
        number = int(c["number"])
        quotes = c.get("quotes") or [c.get("text", "")]
        quoted = " … ".join(f"<mark>{esc(q)}</mark>" for q in quotes)
        items.append(
            f'<li class="ia-source" id="ia-src-{key}-{number}">'
            f'<div class="ia-source-head"><span class="ia-marker">[{number}]</span> '
            f'<span class="ia-doc">{esc(c.get("title", ""))}</span>'
            + (f' › <span class="ia-section">{esc(c["section"])}</span>' if c.get("section") else "")
            + (f' <span class="ia-page">{labels["page"]} {int(c["page"])}</span>' if c.get("page") else "")
            + f' {original_link(c, labels)}</div><blockquote class="ia-quote">{quoted}</blockquote>'
            f'<details class="ia-context"><summary>{labels["paragraph"]}</summary>'
            f'<p class="ia-passage">{marked_passage(c)}</p>'
            f'<p class="ia-origin">{esc(c.get("source", ""))}, {labels["characters"]} '
            f'{int(c.get("start", 0))}–{int(c.get("end", 0))}</p>'
            f'</details></li>')
    label = labels["source"] if len(items) == 1 else labels["sources"]
    return (f'<details class="ia-sources"><summary>{label} ({len(items)})</summary>'
            f'<ol class="ia-source-list">{"".join(items)}</ol></details>')


# -- Découvrir ---------------------------------------------------------------------------------
def _cited(citation: dict) -> str:
    """One discovery item's sentence, then where it is from (a link to the original)."""
    where = location(citation.get("title", ""), citation.get("section", ""))
    page = f', p. {int(citation["page"])}' if citation.get("page") else ""
    return (f'<blockquote class="ia-quote">{" … ".join(esc(q) for q in citation.get("quotes", []))}</blockquote>'
            f'<div class="ia-source-head">{esc(where)}{page} {original_link(citation)}</div>')


def discovery_html(discovery: dict, document: str | None = None) -> str:
    """The Découvrir tab: documents (overview), glossary, timeline; ``document``: one title only."""
    keep = (lambda c: c.get("title") == document) if document else (lambda c: True)
    documents = [d for d in discovery.get("documents", []) if not document or d["title"] == document]
    overview = "".join(
        f'<li class="ia-discover-doc"><h3>{esc(d["title"])}</h3>'
        + (f'<p class="ia-sections">Sections : {esc(", ".join(d["sections"]))}</p>' if d["sections"] else "")
        + _cited(d["opening"]) + "</li>" for d in documents)
    glossary = "".join(f'<li><dfn>{esc(g["acronym"])}</dfn> : {esc(g["expansion"])}{_cited(g["citation"])}</li>'
                       for g in discovery.get("glossary", []) if keep(g["citation"]))
    events = "".join(f'<li><time>{esc(e["date"])}</time>{_cited(e["citation"])}</li>'
                     for e in discovery.get("timeline", []) if keep(e["citation"]))
    return (f'<section class="ia-discover" lang="fr"><h2>Documents ({len(documents)})</h2><ul>{overview}</ul>'
            f'<h2>Sigles</h2>{"<ul>" + glossary + "</ul>" if glossary else "<p>Aucun sigle défini.</p>"}'
            f'<h2>Chronologie</h2>{"<ol>" + events + "</ol>" if events else "<p>Aucune date.</p>"}</section>')


# -- export ------------------------------------------------------------------------------------
def conversation_markdown(turns: list[dict], title: str = "Conversation") -> str:
    """A conversation as Markdown: each question, its answer (the asked fact in bold), and its
    numbered sources (title › section, page, quoted sentences)."""
    out = [f"# {title}", ""]
    for turn in turns:
        answer = turn["answer"]
        out += [f"## {turn['question'].strip()}", "", answer.get("markdown") or answer.get("text", ""), ""]
        citations = answer.get("citations", [])
        if citations:
            out += ["Sources :", ""]
            for c in citations:
                page = f", p. {c['page']}" if c.get("page") else ""
                origin = c.get("url") or c.get("source", "")
                out.append(f"[{c['number']}] {location(c.get('title', ''), c.get('section', ''))}{page} ({origin})")
                out += [f"> {q}" for q in (c.get("quotes") or [])]
                out.append("")
    return "\n".join(out).rstrip() + "\n"


# -- header and documents tab ------------------------------------------------------------------
def outline(chunks: Iterable[Any]) -> "OrderedDict[str, OrderedDict[str, list[str]]]":
    """Document title -> section -> passage texts, in reading order."""
    ordered = sorted(chunks, key=lambda c: (c.document, c.start))
    result: OrderedDict[str, OrderedDict[str, list[str]]] = OrderedDict()
    for chunk in ordered:
        sections = result.setdefault(chunk.title or chunk.document, OrderedDict())
        sections.setdefault(chunk.section or "(sans titre)", []).append(chunk.text)
    return result


def header_html(titles: list[str]) -> str:
    listed = ", ".join(f"« {esc(t)} »" for t in titles)
    plural = "ces documents" if len(titles) > 1 else "ce document"
    return ('<div class="ia-header"><h1>Assistant du programme Mali — Interpeace et IMRAP</h1>'
            f'<p class="ia-scope">Je réponds uniquement à partir de {plural} : {listed}. '
            "Chaque réponse cite ses sources ; si l'information n'y figure pas, je vous le dis.</p></div>")


def section_html(title: str, section: str, texts: list[str]) -> str:
    paragraphs = "".join(f'<p>{esc(t)}</p>' for t in texts)
    return (f'<article class="ia-section-view"><h2>{esc(location(title, section))}</h2>'
            f'{paragraphs or "<p><em>Section vide.</em></p>"}</article>')


def status_html(manifest: dict, engine: str) -> str:
    built = str(manifest.get("built_at", "?")).replace("T", " ").replace("+00:00", " UTC")
    rows = [
        ("Modèle d'embeddings", manifest.get("embedding_model", "?")),
        ("Moteur de réponse", engine),
        ("Documents", manifest.get("documents", "?")),
        ("Passages indexés", manifest.get("chunks", "?")),
        ("Phrases", manifest.get("sentences", "?")),
        ("Construit le", built),
        ("Durée de construction", f"{manifest.get('build_seconds', '?')} s"),
    ]
    cells = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in rows)
    return f'<table class="ia-status"><caption>État de l\'index</caption>{cells}</table>'


STATUS_LABELS = {"indexed": "indexé", "new": "nouveau, pas encore indexé", "changed": "modifié, à réindexer",
                 "failed": "laissé de côté"}


def library_html(entries: Iterable[dict]) -> str:
    """Every file of the corpus folder: title, file (a link to it), pages, sections, passages, status and,
    for a file left out, the reason."""
    entries = list(entries)
    rows = []
    for e in entries:
        failed = e.get("status") == "failed"
        link = f'<a href="{html.escape(document_link(e["source"]), quote=True)}" target="_blank" rel="noopener noreferrer">' \
               f'{esc(e["source"])}</a>' if not failed else esc(e["source"])
        status = esc(STATUS_LABELS.get(e.get("status", ""), e.get("status", "")))
        reason = f' : {esc(e["reason"])}' if e.get("reason") else ""
        rows.append(f'<tr class="ia-doc-{esc(e.get("status", ""))}"><td>{esc(e.get("title", ""))}</td><td>{link}</td>'
                    f'<td>{int(e["pages"]) if e.get("pages") else "–"}</td><td>{int(e.get("sections") or 0)}</td>'
                    f'<td>{int(e.get("chunks") or 0)}</td><td>{status}{reason}</td></tr>')
    failed = sum(1 for e in entries if e.get("status") == "failed")
    caption = f"{len(entries)} fichier(s) dans le corpus" + (f", dont {failed} laissé(s) de côté" if failed else "")
    return (f'<table class="ia-library"><caption>{esc(caption)}</caption><thead><tr><th scope="col">Titre</th>'
            '<th scope="col">Fichier</th><th scope="col">Pages</th><th scope="col">Sections</th>'
            f'<th scope="col">Passages</th><th scope="col">État</th></tr></thead><tbody>{"".join(rows)}</tbody></table>')


def update_message(summary: dict) -> str:
    """What a re-indexing did, in one French sentence."""
    parts = [f"{len(summary.get(key, []))} {label}" for key, label in
             (("added", "ajouté(s)"), ("updated", "modifié(s)"), ("removed", "retiré(s)"), ("failed", "laissé(s) de côté"))]
    return (f"Index à jour en {summary.get('seconds', 0):.1f} s : {', '.join(parts)} ; "
            f"{summary.get('chunks_embedded', 0)} passage(s) calculé(s), {summary.get('documents', 0)} document(s) indexé(s).")


def message_html(text: str) -> str:
    """A message of the Documents tab (it names files): text, never markup or Markdown."""
    return f'<p class="ia-library-message">{esc(text)}</p>'


def audit_html(entries: Iterable[dict]) -> str:
    """The audit log (most recent first), every cell escaped."""
    entries = list(entries)
    rows = "".join("<tr>" + "".join(f"<td>{esc(e.get(column, ''))}</td>" for column in
                                     ("date", "utilisateur", "adresse", "action", "document", "détail")) + "</tr>"
                   for e in entries)
    caption = f"{len(entries)} opération(s), les plus récentes d'abord" if entries else "Aucune opération enregistrée."
    return (f'<table class="ia-audit"><caption>{esc(caption)}</caption><thead><tr><th scope="col">Date (UTC)</th>'
            '<th scope="col">Utilisateur</th><th scope="col">Adresse</th><th scope="col">Action</th>'
            f'<th scope="col">Document</th><th scope="col">Détail</th></tr></thead><tbody>{rows}</tbody></table>')
