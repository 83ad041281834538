"""The Gradio Blocks app: chat with cited answers, feedback, a documents tab, and the ``/ask`` API.

A thin shell: every answer comes from ``Assistant.stream`` / ``Assistant.ask``; this module only
keeps the conversation, renders (``ui.render``) and stores feedback (``assistant.feedback``).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
from datetime import datetime
import html
from pathlib import Path
import secrets
import tempfile
import uuid
from typing import Any, Callable, Sequence  # noqa: E402

import gradio as gr  # noqa: E402

from assistant.conversations import ConversationStore  # noqa: E402
from assistant.corpus import SUPPORTED_SUFFIXES  # noqa: E402
from assistant.errors import AssistantError  # noqa: E402
from assistant.feedback import FeedbackStore  # noqa: E402
from assistant.library import TRASH, Library  # noqa: E402

from . import render  # noqa: E402
from .access import AuditLog, Roles, check_exposure, check_proxies, parse_names  # noqa: E402

log = logging.getLogger("assistant")

TITLE = "Assistant du programme Mali — Interpeace et IMRAP"
CSS = """
.ia-header h1 { margin: 0 0 .25rem 0; font-size: 1.6rem; }
/* Text colours chosen for contrast (WCAG AA, 4.5:1) in both themes: Gradio's "subdued" grey and
   orange accent are below it on white. */
:root { --ia-muted: #4b5563; --ia-accent: #9a3412; --ia-mark-bg: #fde68a; --ia-mark-fg: #111827; }
.dark { --ia-muted: #d1d5db; --ia-accent: #fdba74; --ia-mark-bg: #fde68a; --ia-mark-fg: #111827; }
.ia-scope { margin: 0; color: var(--ia-muted); }
button[role=tab].selected { color: var(--ia-accent) !important; }
#chat .message-content, .ia-section-view { overflow-wrap: anywhere; }
.ia-marker { font-weight: 700; color: var(--ia-accent); white-space: nowrap; text-decoration: none; }
a.ia-marker:hover, a.ia-marker:focus { text-decoration: underline; }
.ia-span { font-weight: 700; text-decoration: underline; text-decoration-thickness: 2px; text-underline-offset: 3px; }
.ia-sources { margin-top: .6rem; border-top: 1px solid var(--border-color-primary); padding-top: .4rem; }
.ia-sources > summary, .ia-context > summary { cursor: pointer; font-weight: 700; }
.ia-source-list { margin: .3rem 0 0 1.2rem; padding: 0; }
.ia-source { margin: .4rem 0; }
.ia-source-head { font-size: .9em; color: var(--ia-muted); }
.ia-open { margin-left: .4em; font-size: .9em; }
.ia-quote { margin: .25rem 0; padding-left: .6rem; border-left: 3px solid var(--ia-accent); }
.ia-sources mark, .ia-section-view mark { background: var(--ia-mark-bg); color: var(--ia-mark-fg); padding: 0 .1em; }
.ia-source:target { outline: 2px solid var(--ia-accent); outline-offset: 2px; }
.ia-context { font-size: .92em; }
.ia-origin { font-size: .8em; color: var(--ia-muted); }
.ia-abstention { border-left: 4px solid #9aa4b2; padding: .2rem .6rem; font-style: italic; }
.ia-hint { font-style: normal; font-size: .9em; color: var(--ia-muted); margin: .3rem 0 0 0; }
.ia-notice, .ia-error { color: var(--ia-accent); font-size: .9em; }
.ia-discover h2 { font-size: 1.15rem; margin: 1rem 0 .3rem 0; }
.ia-discover h3 { font-size: 1rem; margin: .6rem 0 .2rem 0; }
.ia-section-view h2 { font-size: 1.1rem; }
.ia-discover li { margin: .3rem 0; }
.ia-discover dfn { font-style: normal; font-weight: 700; }
.ia-discover time { font-weight: 700; margin-right: .4em; }
/* Phone: the question box takes the row, the buttons go under it; the page scrolls once. */
@media (max-width: 640px) {
  #question-row { flex-wrap: wrap; }
  #question-row > .form, #question-row > #question { flex: 1 1 100% !important; min-width: 100% !important; }
  #question-row > button { flex: 1 1 40% !important; min-width: 0 !important; }
  #chat { height: auto !important; max-height: 65vh; }
  .ia-header h1 { font-size: 1.25rem; }
}
.ia-typing { opacity: .6; }
.ia-status th { text-align: left; padding-right: 1rem; font-weight: 700; }
.ia-status caption, .ia-library caption { text-align: left; font-weight: 700; margin-bottom: .3rem; }
.ia-library { margin-top: 1rem; }
.ia-library th, .ia-library td, .ia-audit th, .ia-audit td { padding: .2rem .6rem; text-align: left; vertical-align: top; }
.ia-audit caption { text-align: left; font-weight: 700; margin-bottom: .3rem; }
"""


def theme() -> gr.themes.Base:
    # Local fonts only; the bundled SemiBold is a tiny subset, so bold uses the 700 weight. The
    # primary button's orange with white text was 2.8:1: a darker orange reads at 5.2:1; the red
    # of « Retirer » / « Arrêter » likewise (3.8:1 -> 6.5:1).
    return gr.themes.Default(font=(gr.themes.LocalFont("Source Sans Pro", weights=(400, 700)),
                                   "ui-sans-serif", "system-ui", "sans-serif")).set(
        button_primary_background_fill="#c2410c", button_primary_background_fill_dark="#c2410c",
        button_primary_background_fill_hover="#9a3412", button_primary_background_fill_hover_dark="#9a3412",
        button_primary_text_color="#ffffff", button_primary_text_color_dark="#ffffff",
        button_cancel_background_fill="#b91c1c", button_cancel_background_fill_dark="#b91c1c",
        button_cancel_background_fill_hover="#991b1b", button_cancel_background_fill_hover_dark="#991b1b",
        button_cancel_text_color="#ffffff", button_cancel_text_color_dark="#ffffff",
        body_text_color_subdued="#4b5563", body_text_color_subdued_dark="#d1d5db",
        input_placeholder_color="#6b7280", input_placeholder_color_dark="#9ca3af")



def _history(turns: list[dict]) -> list[dict[str, str]]:
    """The finished turns of the conversation, as Assistant.ask expects them."""
    history: list[dict[str, str]] = []
    for turn in turns:
        history += [{"role": "user", "content": turn["question"]},
                    {"role": "assistant", "content": turn["answer"]["text"]}]
    return history


def browser_secret(data_dir: str | Path) -> str:
    """The key that seals each browser's id in its localStorage: kept in the data folder, so a
    browser is recognised (and finds its conversations) after a server restart."""
    path = Path(data_dir) / "browser-secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".browser-secret-{os.getpid()}")
        temporary.write_text(secrets.token_hex(32), encoding="ascii")
        temporary.chmod(0o600)
        os.replace(temporary, path)
    return path.read_text(encoding="ascii").strip()


class BrowserSeal:
    """Each browser's id, sealed by the server: the browser keeps ``<id>.<mac>`` in its
    localStorage, the mac an HMAC of the id under the key of ``browser_secret`` (which never
    leaves the server). A value the server did not seal names no browser, so another browser's id
    (or a guessed one) opens nothing."""

    def __init__(self, key: str) -> None:
        self._key = key.encode("ascii")

    def _mac(self, browser_id: str) -> str:
        return hmac.new(self._key, f"navigateur:{browser_id}".encode(), hashlib.sha256).hexdigest()[:32]

    def seal(self, browser_id: str) -> str:
        return f"{browser_id}.{self._mac(browser_id)}"

    def open(self, token: Any) -> str | None:
        """The browser id a sealed value carries, or None for anything the server did not seal."""
        if not isinstance(token, str) or token.count(".") != 1 or len(token) > 200:
            return None
        browser_id, mac = token.split(".")
        return browser_id if browser_id and hmac.compare_digest(mac, self._mac(browser_id)) else None

    def storage_secret(self) -> str:
        """What Gradio's BrowserState encrypts the value with in the browser: it is sent to every
        visitor (in /config), so it is derived from the key one way and protects nothing."""
        return hmac.new(self._key, b"stockage-navigateur", hashlib.sha256).hexdigest()[:32]


def build_app(assistant: Any, settings: Any = None, store: FeedbackStore | None = None, evaluation: bool = True,
              extra_tabs: Sequence[Callable[[], Any]] = (), conversations: ConversationStore | None = None,
              answers: Any = None) -> gr.Blocks:
    """The Blocks app over an already loaded ``Assistant`` (tests pass theirs).

    ``store`` defaults to ``feedback.sqlite3`` in ``settings.data_dir``. ``evaluation`` mounts the
    "Évaluation" tab (``ui.eval_tab``, its own ``/run_eval`` endpoint). Each of ``extra_tabs`` is
    called inside the app's ``gr.Tabs`` to add a tab of its own (``with gr.Tab(...): ...``).
    ``answers`` (``ui.workers.AnswerWorkers``, what ``assistant serve`` passes): the chat's and
    ``/ask``'s answers come from its worker processes, as ``Answer.to_dict()``; everything else
    from ``assistant``.
    """
    from .sessions import lazy_session_configs, lighter_requests

    lazy_session_configs()  # an /ask call must not pay for the configuration of the whole page
    lighter_requests()
    settings = settings or assistant.settings
    store = store or FeedbackStore.in_dir(settings.data_dir)
    conversations = conversations or ConversationStore.in_dir(settings.data_dir)
    library = Library(settings.corpus_dir, settings.max_document_bytes)
    roles = Roles(settings.admins)
    audit = AuditLog.in_dir(settings.data_dir)
    seal = BrowserSeal(browser_secret(settings.data_dir))
    outlines: dict[int, Any] = {}

    def current_outline():
        """Document title -> section -> passages of the index being served (recomputed after an update)."""
        index = assistant.index
        if id(index) not in outlines:
            outlines.clear()
            outlines[id(index)] = (index, render.outline(index.chunks))
        return outlines[id(index)][1]

    titles = list(current_outline()) or ["(aucun document)"]
    starters = list(assistant.discover().questions)  # from the corpus, each one answered with a citation

    # -- chat ----------------------------------------------------------------------------------
    def take_question(message: str):
        busy = (gr.update(visible=False), gr.update(visible=True))
        return (gr.update(value="", interactive=False), message, *busy)

    def idle():
        return gr.update(interactive=True), gr.update(visible=True), gr.update(visible=False)

    def respond(message: str, messages: list, turns: list, conversation: str | None):
        conversation = conversation or uuid.uuid4().hex
        message = (message or "").strip()
        messages = list(messages or [])
        if not message:
            gr.Warning("Écrivez d'abord une question.", title="Attention")
            yield messages, turns, conversation
            return
        history = _history(turns)
        messages += [{"role": "user", "content": render.user_html(message, settings.max_question_chars)},
                     {"role": "assistant", "content": render.pending_html()}]
        yield messages, turns, conversation
        text, answer = "", None
        try:
            if answers is not None:  # worker processes: the whole answer at once
                answer = answers.ask(message, history)
            else:
                for piece in assistant.stream(message, history):
                    if isinstance(piece, str):
                        text += piece
                        messages[-1] = {"role": "assistant", "content": render.pending_html(text)}
                        yield messages, turns, conversation
                    else:
                        answer = piece.to_dict()
        except (ValueError, AssistantError) as exc:  # malformed input, or a problem the user can fix
            messages[-1] = {"role": "assistant", "content": render.error_html(str(exc))}
            yield messages, turns, conversation
            return
        if answer is None:
            return
        answer.pop("retrieved", None)  # not needed in the session state
        messages[-1] = {"role": "assistant", "content": render.answer_html(answer)}
        turns = [*turns, {"index": len(messages) - 1, "question": message, "history": history, "answer": answer}]
        yield messages, turns, conversation

    def pick_example(evt: gr.SelectData) -> str:
        value = evt.value
        return value.get("text", "") if isinstance(value, dict) else str(value)

    def new_conversation():
        hide = gr.update(visible=False)
        return ([], [], None, None, hide, gr.update(value="", interactive=True), gr.update(visible=True), hide, hide,
                gr.update(value=None))

    def export_conversation(turns: list):
        """The conversation as a Markdown file to download (« Exporter »)."""
        if not turns:
            return gr.update(visible=False)
        folder = Path(tempfile.mkdtemp(prefix="conversation-"))
        path = folder / f"conversation-{datetime.now():%Y%m%d-%H%M}.md"
        path.write_text(render.conversation_markdown(turns, TITLE), encoding="utf-8")
        return gr.update(value=str(path), visible=True)

    # -- saved conversations (per signed-in user, or per browser on localhost) ----------------------
    def owner_of(request: gr.Request | None, sealed: str | None) -> str:
        """The signed-in user, else the browser whose sealed id this is (nobody for an unsealed one)."""
        name = getattr(request, "username", None) if request is not None else None
        if name:
            return f"user:{name}"
        browser_id = seal.open(sealed)
        return f"browser:{browser_id}" if browser_id else ""

    def saved_choices(owner: str, selected: str | None = None):
        listed = conversations.list(owner) if owner else []
        choices = [(f"{c.title} · {c.turns} question(s) · {c.updated_at[:16].replace('T', ' ')}", c.id) for c in listed]
        return gr.update(choices=choices, value=selected if any(v == selected for _, v in choices) else None)

    def save_conversation(turns: list, conversation: str | None, browser_id: str | None, request: gr.Request):
        owner = owner_of(request, browser_id)
        if not turns or not conversation or not owner:
            return gr.update()
        conversations.save(owner, conversation, turns)
        return saved_choices(owner, conversation)

    def open_conversation(chosen: str | None, browser_id: str | None, request: gr.Request):
        owner = owner_of(request, browser_id)
        turns = conversations.load(owner, chosen) if chosen and owner else None
        if turns is None:
            gr.Warning("Cette conversation n'existe plus.", title="Attention")
            return gr.update(), gr.update(), gr.update(), gr.update(), saved_choices(owner)
        messages = []
        for number, turn in enumerate(turns):
            turn["index"] = 2 * number + 1
            messages += [{"role": "user", "content": render.user_html(turn["question"], settings.max_question_chars)},
                         {"role": "assistant", "content": render.answer_html(turn["answer"])}]
        return messages, turns, chosen, export_conversation(turns), gr.update()

    def rename_conversation(chosen: str | None, title: str, browser_id: str | None, request: gr.Request):
        owner = owner_of(request, browser_id)
        if not chosen:
            gr.Warning("Choisissez d'abord une conversation.", title="Attention")
            return gr.update(), gr.update()
        try:
            conversations.rename(owner, chosen, title)
        except ValueError as exc:
            gr.Warning(html.escape(str(exc), quote=False), title="Attention")
            return gr.update(), gr.update()
        return saved_choices(owner, chosen), gr.update(value="")

    def delete_conversation(chosen: str | None, browser_id: str | None, request: gr.Request):
        owner = owner_of(request, browser_id)
        if not chosen:
            gr.Warning("Choisissez d'abord une conversation.", title="Attention")
            return gr.update()
        conversations.delete(owner, chosen)
        gr.Info("Conversation supprimée.", title="Information")
        return saved_choices(owner)

    def identify(sealed: str | None, request: gr.Request):
        """At page load: this browser's sealed id (drawn once, kept in its localStorage; a value the
        server did not seal is replaced by a new one) and its conversations."""
        if seal.open(sealed) is None:
            sealed = seal.seal(uuid.uuid4().hex)
        return sealed, saved_choices(owner_of(request, sealed))

    def discover(document: str | None):
        found = assistant.discover().to_dict()
        return render.discovery_html(found, None if document in (None, "Tous les documents") else document)

    # -- feedback ------------------------------------------------------------------------------
    def on_like(evt: gr.LikeData, turns: list, conversation: str | None):
        index = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
        found = next(((n, t) for n, t in enumerate(turns) if t["index"] == index), None)
        if found is None or not conversation:
            gr.Info("Cette réponse n'est pas terminée : il n'y a rien à noter.", title="Information")
            return None, gr.update(visible=False), gr.update()
        number, turn = found
        if evt.liked is True or evt.liked is False:
            rating = "up" if evt.liked else "down"
            feedback_id = store.rate(conversation, number, rating, turn["question"], turn["history"], turn["answer"])
            label = ("Merci ! Un commentaire sur cette réponse ? (facultatif)" if rating == "up" else
                     "Merci. Qu'est-ce qui manquait ou était faux ? (facultatif)")
            return feedback_id, gr.update(visible=True), gr.update(value="", label=label)
        store.withdraw(conversation, number)
        return None, gr.update(visible=False), gr.update(value="")

    def on_comment(text: str, feedback_id: int | None):
        if not feedback_id:
            gr.Warning("Notez d'abord une réponse (pouce levé ou baissé).", title="Attention")
            return gr.update(), gr.update()
        if not (text or "").strip():
            gr.Warning("Le commentaire est vide.", title="Attention")
            return gr.update(), gr.update()
        if store.comment(feedback_id, text):
            gr.Info("Votre commentaire est enregistré.", title="Merci")
        return gr.update(value=""), gr.update(visible=False)

    # -- documents tab -------------------------------------------------------------------------
    def sections_of(title: str) -> list[str]:
        return list(current_outline().get(title, {}))

    def show_section(title: str, section: str | None) -> str:
        sections = current_outline().get(title, {})
        if section not in sections:
            section = next(iter(sections), "")
        return render.section_html(title, section, sections.get(section, []))

    def pick_document(title: str):
        sections = sections_of(title)
        first = sections[0] if sections else None
        return gr.update(choices=sections, value=first), show_section(title, first)

    # -- the library: list, upload, remove, re-index (administrators), the audit log ----------------
    def is_admin(request: gr.Request | None) -> bool:
        """Managing documents, evaluations, the audit log: an administrator (``admins``), or the
        browser on this machine when nobody signs in."""
        return roles.is_admin(request)

    def record(request: gr.Request | None, action: str, document: str = "", detail: str = "") -> None:
        user, address = roles.who(request)
        audit.record(user, address, action, document, detail)

    def require_admin(request: gr.Request | None, action: str, document: str = "") -> None:
        """Refuses (and records) what only an administrator may do: the page hides it from the
        others, and this holds whatever a client sends."""
        if is_admin(request):
            return
        record(request, f"refus : {action}", document)
        raise gr.Error("Réservé aux administrateurs : demandez à un administrateur de l'assistant.",
                       title="Accès refusé", print_exception=False)

    def library_view():
        """The library table, the index status, and the choices that depend on the index."""
        entries = [e.to_dict() for e in library.catalogue(assistant.index)]
        titles_now = list(current_outline()) or ["(aucun document)"]
        sources = [e["source"] for e in entries]
        return (render.library_html(entries), render.status_html(assistant.index.manifest, settings.engine),
                gr.update(choices=titles_now, value=titles_now[0]), gr.update(choices=sources, value=None),
                render.header_html(titles_now))

    def on_load(request: gr.Request):
        """At each page load: the header and status of the index being served, and whether this
        visitor sees the parts only administrators see (``admin_only``: managing documents, the
        audit log, evaluation; the library itself is read when its tab is opened)."""
        titles_now = list(current_outline()) or ["(aucun document)"]
        admin = gr.update(visible=is_admin(request))
        return (render.header_html(titles_now), render.status_html(assistant.index.manifest, settings.engine),
                *[admin] * len(admin_only))

    def _reindex(progress) -> tuple[tuple, str, str]:
        """Re-read the corpus folder: (library view, message as text, outcome for the audit log)."""
        progress(0, desc="Lecture du corpus…")
        try:
            summary = assistant.update(show_progress=True)
        except (RuntimeError, AssistantError) as exc:
            gr.Warning(html.escape(str(exc), quote=False), title="Indexation")
            return library_view(), "", f"échec : {exc}"
        message = render.update_message(summary)
        if summary["failed"]:
            message += " Laissés de côté : " + " ; ".join(f"{f['source']} ({f['reason']})" for f in summary["failed"]) + "."
        return library_view(), message, message

    def reindex(request: gr.Request, progress=gr.Progress(track_tqdm=True)):
        require_admin(request, "réindexation")
        view, message, outcome = _reindex(progress)
        record(request, "réindexation", "", outcome)
        return (*view, render.message_html(message) if message else gr.update())

    def upload(files: list | None, request: gr.Request, progress=gr.Progress(track_tqdm=True)):
        require_admin(request, "ajout")
        added, refused = [], []
        for file in files or []:
            path = Path(file if isinstance(file, str) else getattr(file, "name", ""))
            name = getattr(file, "orig_name", None) or path.name
            try:
                added.append(library.add(name, path.read_bytes()))
            except (ValueError, OSError) as exc:
                refused.append((name, str(exc)))
        for name, reason in refused:
            record(request, "ajout refusé", name, reason)
            gr.Warning(html.escape(reason, quote=False), title="Fichier refusé")
        if not added:
            return (*library_view(), render.message_html("Aucun fichier ajouté."), None)
        view, message, outcome = _reindex(progress)
        for name in added:
            record(request, "ajout", name, outcome)
        return (*view, render.message_html(f"Ajouté(s) : {', '.join(added)}. {message}"), None)

    def remove(source: str | None, request: gr.Request, progress=gr.Progress(track_tqdm=True)):
        require_admin(request, "retrait", source or "")
        if not source:
            gr.Warning("Choisissez d'abord le document à retirer.", title="Attention")
            return (*library_view(), gr.update())
        try:
            kept = library.remove(source)
        except (ValueError, OSError) as exc:
            gr.Warning(html.escape(str(exc), quote=False), title="Attention")
            return (*library_view(), gr.update())
        view, message, outcome = _reindex(progress)
        record(request, "retrait", source, f"copie gardée : {TRASH}/{kept.name} ; {outcome}")
        return (*view, render.message_html(f"« {source} » retiré (une copie est gardée dans {TRASH}/{kept.name}). {message}"))

    def audit_view(request: gr.Request):
        require_admin(request, "lecture du journal")
        return render.audit_html(audit.entries(limit=200))

    def audit_export(request: gr.Request):
        require_admin(request, "export du journal")
        folder = Path(tempfile.mkdtemp(prefix="journal-"))
        path = audit.write_csv(folder / f"journal-{datetime.now():%Y%m%d-%H%M%S}.csv")
        return gr.update(value=str(path), visible=True)

    # -- programmatic endpoint -----------------------------------------------------------------
    def ask(question: str, history: list[dict[str, str]] | None = None) -> dict[str, Any]:
        """Answer `question` from the documents. `history`: earlier turns, oldest first, as
        {"role": "user"|"assistant", "content": str}. Returns Answer.to_dict(): text with [n]
        markers, citations (number, text, document, title, section, quotes, ...), abstained, query,
        engine, timings."""
        try:
            if answers is not None:
                return answers.ask(question, history or [])
            return assistant.ask(question, history or []).to_dict()
        except (ValueError, AssistantError) as exc:
            # The modal renders HTML: the message may quote the input, so escape it.
            raise gr.Error(html.escape(str(exc), quote=False), title="Erreur", print_exception=False) from exc

    # -- layout --------------------------------------------------------------------------------
    with gr.Blocks(title=TITLE, analytics_enabled=False) as demo:
        header = gr.HTML(render.header_html(titles), elem_id="header")
        turns = gr.State([])  # finished turns: question, history before it, Answer.to_dict()
        conversation = gr.State(None)  # an id, drawn at the first question
        pending = gr.State("")
        # The value is the browser's id as the server sealed it; the key stays on the server.
        browser = gr.BrowserState(None, storage_key="assistant-navigateur", secret=seal.storage_secret())
        rated = gr.State(None)  # the feedback row a comment goes to
        with gr.Tabs():
            with gr.Tab("Conversation", id="chat-tab"):
                chatbot = gr.Chatbot(
                    label="Conversation", show_label=False, elem_id="chat", height=540, render_markdown=False,
                    sanitize_html=True, allow_tags=False, feedback_options=("Like", "Dislike"),
                    examples=[{"text": q} for q in starters], buttons=["copy", "copy_all"],
                    placeholder="Posez une question ci-dessous, ou choisissez une question pour commencer.",
                )
                # Right under the answers: the comment goes with the answer just rated.
                with gr.Group(visible=False) as comment_box:
                    comment = gr.Textbox(label="Un commentaire sur cette réponse ? (facultatif)", elem_id="comment",
                                         lines=2, placeholder="Votre remarque aide à améliorer l'assistant.")
                    send_comment = gr.Button("Envoyer le commentaire", elem_id="send-comment", size="sm")
                with gr.Row(equal_height=True, elem_id="question-row"):
                    question = gr.Textbox(label="Votre question", elem_id="question", scale=8, lines=1, max_lines=6,
                                          placeholder="Par exemple : " + (starters[0] if starters else "qui, quoi, quand ?"),
                                          submit_btn=False)
                    send = gr.Button("Envoyer", variant="primary", elem_id="send", scale=1, min_width=110)
                    stop = gr.Button("Arrêter", variant="stop", elem_id="stop", scale=1, min_width=110, visible=False)
                with gr.Row():
                    new = gr.Button("Nouvelle conversation", elem_id="new-conversation", size="sm")
                    export = gr.DownloadButton("Exporter", elem_id="export", size="sm", visible=False)
                with gr.Accordion("Mes conversations", open=False, elem_id="saved-conversations"):
                    saved = gr.Dropdown(choices=[], value=None, label="Reprendre une conversation enregistrée",
                                        elem_id="saved")
                    with gr.Row(equal_height=True):
                        new_title = gr.Textbox(label="Nouveau nom", elem_id="new-title", scale=3, max_length=120)
                        rename = gr.Button("Renommer", elem_id="rename", scale=1, min_width=110)
                        delete = gr.Button("Supprimer", variant="stop", elem_id="delete", scale=1, min_width=110)
                gr.Markdown("Sous chaque réponse, le pouce levé ou baissé enregistre votre avis (avec la conversation) "
                            "pour améliorer l'assistant. « Exporter » télécharge la conversation en Markdown.",
                            elem_classes=["ia-hint"])
            with gr.Tab("Découvrir", id="discover-tab") as discover_tab:
                gr.Markdown("Ce que contiennent les documents : leurs sections et premières phrases, les sigles "
                            "qu'ils définissent et les dates qu'ils citent, chacun avec sa source. Les questions "
                            "proposées dans la conversation viennent d'ici.")
                discover_document = gr.Dropdown(choices=["Tous les documents", *titles], value="Tous les documents",
                                                label="Document", elem_id="discover-document")
                discover_view = gr.HTML(elem_id="discover")
            with gr.Tab("Documents", id="documents-tab") as documents_tab:
                status = gr.HTML(render.status_html(assistant.index.manifest, settings.engine), elem_id="index-status")
                catalogue = gr.HTML(elem_id="library")
                with gr.Group(visible=False) as manage:
                    uploads = gr.File(label=f"Ajouter des documents ({', '.join(SUPPORTED_SUFFIXES)} ; "
                                            f"{settings.max_document_bytes / 1e6:.0f} Mo au plus)",
                                      file_count="multiple", file_types=list(SUPPORTED_SUFFIXES), elem_id="upload")
                    with gr.Row(equal_height=True):
                        to_remove = gr.Dropdown(choices=[], value=None, label="Document à retirer", elem_id="remove-source",
                                                scale=3)
                        remove_button = gr.Button("Retirer", variant="stop", elem_id="remove", scale=1, min_width=110)
                        reindex_button = gr.Button("Réindexer", elem_id="reindex", scale=1, min_width=110)
                    library_message = gr.HTML(elem_id="library-message")  # names as text, never markup
                with gr.Accordion("Journal des opérations", open=False, visible=False, elem_id="audit") as audit_box:
                    gr.Markdown("Qui a ajouté, retiré ou réindexé des documents, ou lancé une évaluation, et quand "
                                "(réservé aux administrateurs ; le journal ne fait que s'allonger).")
                    audit_table = gr.HTML(elem_id="audit-table")
                    with gr.Row():
                        audit_refresh = gr.Button("Afficher le journal", elem_id="audit-refresh", size="sm")
                        audit_csv = gr.Button("Exporter en CSV", elem_id="audit-export", size="sm")
                    audit_file = gr.File(label="Journal (CSV)", interactive=False, visible=False, elem_id="audit-file")
                with gr.Row():
                    with gr.Column(scale=1, min_width=240):
                        document = gr.Dropdown(choices=titles, value=titles[0], label="Document", elem_id="document")
                        first_sections = sections_of(titles[0])
                        section = gr.Radio(choices=first_sections, value=first_sections[0] if first_sections else None,
                                           label="Section", elem_id="section")
                    with gr.Column(scale=3):
                        view = gr.HTML(show_section(titles[0], first_sections[0] if first_sections else None),
                                       elem_id="section-view")
            eval_tab = None
            if evaluation:
                from .eval_tab import build_eval_tab

                with gr.Tab("Évaluation", id="eval-tab", visible=False) as eval_tab:  # administrators
                    build_eval_tab(assistant, settings, guard=require_admin, record=record)
            for add_tab in extra_tabs:
                add_tab()

        private: dict[str, Any] = {"api_visibility": "private"}
        # The extractive engine is read-only at query time: requests run side by side. A language
        # model computes one answer at a time (its backend also holds a lock).
        lane = {"concurrency_id": "assistant",
                "concurrency_limit": settings.max_concurrent_requests if assistant.settings.engine == "extractive" else 1}
        busy_outputs = [question, pending, send, stop]
        answering = []
        for trigger in (question.submit, send.click):
            event = trigger(take_question, [question], busy_outputs, queue=False, **private).then(
                respond, [pending, chatbot, turns, conversation], [chatbot, turns, conversation],
                **lane, **private)
            event.then(idle, None, [question, send, stop], queue=False, **private)
            answering.append(event)
        example = chatbot.example_select(pick_example, None, [pending], queue=False, **private)
        example = example.then(lambda: (gr.update(interactive=False), gr.update(visible=False), gr.update(visible=True)),
                               None, [question, send, stop], queue=False, **private).then(
            respond, [pending, chatbot, turns, conversation], [chatbot, turns, conversation],
            **lane, **private)
        example.then(idle, None, [question, send, stop], queue=False, **private)
        answering.append(example)
        stop.click(idle, None, [question, send, stop], cancels=answering, queue=False, **private)
        for event in answering:
            event.then(export_conversation, [turns], [export], queue=False, **private).then(
                save_conversation, [turns, conversation, browser], [saved], **private)
        demo.load(identify, [browser], [browser, saved], **private)
        saved.input(open_conversation, [saved, browser], [chatbot, turns, conversation, export, saved],
                    cancels=answering, **private)
        rename.click(rename_conversation, [saved, new_title, browser], [saved, new_title], **private)
        new_title.submit(rename_conversation, [saved, new_title, browser], [saved, new_title], **private)
        delete.click(delete_conversation, [saved, browser], [saved], **private)
        discover_tab.select(discover, [discover_document], [discover_view], **private)
        discover_document.change(discover, [discover_document], [discover_view], **private)
        reset = [chatbot, turns, conversation, rated, comment_box, question, send, stop, export, saved]
        new.click(new_conversation, None, reset, cancels=answering, queue=False, **private)
        chatbot.clear(new_conversation, None, reset, cancels=answering, queue=False, **private)
        chatbot.like(on_like, [turns, conversation], [rated, comment_box, comment], **private)
        for trigger in (send_comment.click, comment.submit):
            trigger(on_comment, [comment, rated], [comment, comment_box], **private)
        view_outputs = [catalogue, status, document, to_remove, header]
        admin_only = [manage, audit_box, *([eval_tab] if eval_tab is not None else [])]
        demo.load(on_load, None, [header, status, *admin_only], **private)
        audit_refresh.click(audit_view, None, [audit_table], **private)
        audit_box.expand(audit_view, None, [audit_table], **private)
        audit_csv.click(audit_export, None, [audit_file], **private)
        documents_tab.select(library_view, None, view_outputs, **private)
        library_lane = {"concurrency_id": "library", "concurrency_limit": 1}
        uploads.upload(upload, [uploads], [*view_outputs, library_message, uploads], **library_lane, **private)
        remove_button.click(remove, [to_remove], [*view_outputs, library_message], **library_lane, **private)
        reindex_button.click(reindex, None, [*view_outputs, library_message], **library_lane, **private)
        document.change(pick_document, [document], [section, view], **private)
        section.change(show_section, [document, section], [view], **private)
        gr.api(ask, api_name="ask", **lane)
    demo.assistant_settings = settings  # what launch() reads: administrators, proxies, size limits
    demo.api_open = False  # queued handlers run through the queue only, never straight from /run/predict
    return demo


def launch(demo: gr.Blocks, host: str = "127.0.0.1", port: int = 7860, auth: list[tuple[str, str]] | None = None,
           prevent_thread_lock: bool = False, quiet: bool = False, corpus_dir: str | Path | None = None,
           max_file_size: int | None = None, settings: Any = None):
    """Serve the app; refuses a non-loopback address without authentication. With ``corpus_dir``,
    its files are served read-only at ``/documents/`` (the Sources links). ``max_file_size``:
    uploads larger than this many bytes are refused. ``settings`` (default: those the app was
    built with) gives the administrators, the trusted proxies and the request size limits."""
    check_exposure(host, auth or [])
    from starlette.middleware import Middleware

    from .access import ApiGate, BodyLimit, LoginThrottle, forwarded_from
    from .files import DocumentFiles
    from .page import FrenchPage

    settings = settings or getattr(demo, "assistant_settings", None)
    proxies = check_proxies(parse_names(getattr(settings, "trusted_proxies", "")))
    admins = Roles(getattr(settings, "admins", "")).admins
    if auth and not admins:
        log.warning("Aucun administrateur (réglage admins) : personne ne peut gérer les documents, lancer une "
                    "évaluation ni lire le journal.")
    unknown = sorted(admins - {user for user, _ in auth or []}) if auth else []
    if unknown:
        log.warning("Administrateurs sans mot de passe (réglage auth) : %s.", ", ".join(unknown))
    limits = {"default": getattr(settings, "max_request_bytes", 4_000_000),
              "api": getattr(settings, "max_api_request_bytes", 256_000),
              "upload": getattr(settings, "max_upload_bytes", 100_000_000)}
    known = Path(settings.data_dir) / "sign-ins.json" if settings is not None else None
    middleware = [Middleware(ApiGate, admins=admins), Middleware(BodyLimit, **limits), Middleware(FrenchPage),
                  *([Middleware(LoginThrottle, known_path=known)] if auth else []),
                  *([Middleware(DocumentFiles, corpus_dir=corpus_dir)] if corpus_dir else [])]
    with forwarded_from(proxies):  # only while the server is created
        launched = demo.launch(
            app_kwargs={"middleware": middleware},
            server_name=host, server_port=port, auth=auth or None, share=False, prevent_thread_lock=True,
            auth_message="Assistant du programme Mali : connectez-vous.", show_error=True, quiet=quiet,
            theme=theme(), css=CSS, footer_links=["api"], ssr_mode=False, pwa=False, mcp_server=False,
            enable_monitoring=False, max_file_size=max_file_size,
        )
    if not prevent_thread_lock:
        demo.block_thread()
    return launched
