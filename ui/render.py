"""HTML for the page, built from ``Answer.to_dict()`` and the index's passages. No Gradio here.

Every string a user or a document supplies goes through ``html.escape`` before it is placed in
markup, so a question or a passage holding ``<script>``, ``<img onerror=...>``, raw HTML or
markdown is shown as the characters it is. The chat renders messages as HTML (not markdown), so
markdown syntax has no effect either.
"""

from __future__ import annotations

import html
import re
from collections import OrderedDict
from typing import Any, Iterable

from .files import document_link

_MARKER = re.compile(r"\[(\d+)\]")
CONTACT_HINT = ("Essayez de reformuler votre question (d'autres mots, un nom, une date, un lieu du document), "
                "ou contactez le gestionnaire du programme Mali pour cette information.")


def esc(text: Any) -> str:
    """Text as inert HTML: escaped, line breaks kept."""
    return html.escape(str(text), quote=True).replace("\r\n", "\n").replace("\n", "<br>")


def location(title: str, section: str) -> str:
    return f"{title} › {section}" if section else title


# -- chat messages -----------------------------------------------------------------------------
def user_html(question: str) -> str:
    return f'<div class="ia-question">{esc(question)}</div>'


def pending_html(text: str = "") -> str:
    """An answer being written (streaming) or not started yet."""
    body = esc(text) if text else '<span class="ia-wait">Recherche dans les documents</span>'
    return f'<div class="ia-answer ia-streaming">{body}<span class="ia-typing">…</span></div>'


def error_html(message: str) -> str:
    return f'<div class="ia-error">⚠ {esc(message)}</div>'


def answer_html(answer: dict) -> str:
    """The final answer: text with its [n] markers, then the collapsible sources (or the abstention)."""
    notices = "".join(f'<p class="ia-notice">⚠ {esc(n)}</p>' for n in answer.get("notices", []))
    if answer.get("abstained"):
        return (f'<div class="ia-abstention ia-final"><p class="ia-abstention-text">'
                f'<span class="ia-icon">ⓘ</span> {esc(answer.get("text", ""))}</p>'
                f'<p class="ia-hint">{esc(CONTACT_HINT)}</p></div>{notices}')
    citations = answer.get("citations", [])
    where = {c["number"]: location(c.get("title", ""), c.get("section", "")) for c in citations}

    def marker(match: re.Match) -> str:
        number = int(match.group(1))
        title = f' title="{html.escape(where[number], quote=True)}"' if number in where else ""
        return f'<span class="ia-marker"{title}>[{number}]</span>'

    raw, pieces, cursor = answer.get("text", ""), [], 0
    for start, end in answer.get("spans") or []:  # the asked fact inside the quoted sentence
        pieces += [esc(raw[cursor:start]), f'<strong class="ia-span">{esc(raw[start:end])}</strong>']
        cursor = end
    pieces.append(esc(raw[cursor:]))
    text = _MARKER.sub(marker, "".join(pieces))
    return f'<div class="ia-answer ia-final">{text}</div>{notices}{sources_html(citations)}'


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


def original_link(citation: dict) -> str:
    """A link to what the passage was taken from: the document's web address, else its file (at the page)."""
    if re.match(r"https?://", str(citation.get("url") or "")):  # never javascript: or data:
        href, label = citation["url"], "ouvrir la page"
    elif citation.get("source"):
        href, label = document_link(citation["source"], citation.get("page")), "ouvrir le document"
    else:
        return ""
    return (f'<a class="ia-open" href="{html.escape(href, quote=True)}" target="_blank" '
            f'rel="noopener noreferrer">{label}</a>')


def sources_html(citations: Iterable[dict]) -> str:
    citations = list(citations)
    if not citations:
        return ""
    items = []
    for c in citations:
        quotes = c.get("quotes") or [c.get("text", "")]
        quoted = " … ".join(f"<mark>{esc(q)}</mark>" for q in quotes)
        items.append(
            f'<li class="ia-source">'
            f'<div class="ia-source-head"><span class="ia-marker">[{int(c["number"])}]</span> '
            f'<span class="ia-doc">{esc(c.get("title", ""))}</span>'
            + (f' › <span class="ia-section">{esc(c["section"])}</span>' if c.get("section") else "")
            + (f' <span class="ia-page">p. {int(c["page"])}</span>' if c.get("page") else "")
            + f' {original_link(c)}</div><blockquote class="ia-quote">{quoted}</blockquote>'
            f'<details class="ia-context"><summary>Voir le paragraphe entier</summary>'
            f'<p class="ia-passage">{marked_passage(c)}</p>'
            f'<p class="ia-origin">{esc(c.get("source", ""))}, caractères {int(c.get("start", 0))}–{int(c.get("end", 0))}</p>'
            f'</details></li>')
    label = "Source" if len(items) == 1 else "Sources"
    return (f'<details class="ia-sources"><summary>{label} ({len(items)})</summary>'
            f'<ol class="ia-source-list">{"".join(items)}</ol></details>')


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
    return (f'<article class="ia-section-view"><h3>{esc(location(title, section))}</h3>'
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
