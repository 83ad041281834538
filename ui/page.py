"""The page as the browser receives it: French before Gradio starts, and plain text on the clipboard.

Gradio picks its own strings' language from ``navigator.language`` and sets ``<html lang>`` from it,
so a browser set to English gets "Copy message" and an English screen-reader voice on a French
page; a ``head=`` script runs too late to change that. ``FrenchPage`` (ASGI middleware) writes
``lang="fr"`` and a first script into the page itself. The script also puts plain text on the
clipboard when a copy button copies a message (whose content is our HTML), and gives messages a
plain-text accessible name instead of their markup.
"""

from __future__ import annotations

from typing import Any, Callable

SCRIPT = r"""<script>
(() => {
  try {
    Object.defineProperty(navigator, "language", {get: () => "fr-FR", configurable: true});
    Object.defineProperty(navigator, "languages", {get: () => ["fr-FR", "fr"], configurable: true});
  } catch (e) {}
  document.documentElement.lang = "fr";
  const plain = (markup) => {
    const doc = new DOMParser().parseFromString(markup, "text/html");
    doc.querySelectorAll("details.ia-context, script, style").forEach((n) => n.remove());
    const lines = [];
    doc.body.querySelectorAll(".ia-question, .ia-answer, .ia-abstention, .ia-notice, .ia-error, .ia-source")
      .forEach((n) => {
        if (n.classList.contains("ia-source")) {
          const head = n.querySelector(".ia-source-head");
          const quote = n.querySelector(".ia-quote");
          lines.push((head ? head.textContent.replace(/\s*ouvrir l[ae] (page|document)\s*$/, "") : "").trim()
                     + (quote ? " : « " + quote.textContent.trim() + " »" : ""));
        } else {
          lines.push(n.textContent.trim());
        }
      });
    return lines.length ? lines.join("\n") : doc.body.textContent.trim();
  };
  if (navigator.clipboard && navigator.clipboard.writeText) {
    const write = navigator.clipboard.writeText.bind(navigator.clipboard);
    navigator.clipboard.writeText = (text) => write(/class="ia-/.test(String(text)) ? plain(String(text)) : text);
  }
  // A message's accessible name is its text, not its markup (Gradio labels it with the raw content);
  // the labels Gradio's French translation lacks, in French.
  const french = {"Copy message": "Copier le message", "Copy conversation": "Copier la conversation",
                  "More tabs": "Autres onglets", "Gradio footer navigation": "Liens du pied de page",
                  "bot's message:": "Réponse de l'assistant :", "user's message:": "Votre message :",
                  "Copied message": "Message copié", "Copied conversation": "Conversation copiée",
                  "Empty value": "Aucune valeur"};
  const clean = (el) => {
    let label = el.getAttribute("aria-label") || "";
    const before = label;
    if (/<[a-z]/i.test(label)) {
      const colon = label.indexOf(":");
      label = label.slice(0, colon + 1) + " " + plain(label.slice(colon + 1));
    }
    for (const [english, translated] of Object.entries(french)) {
      if (label === english || label.startsWith(english + " ") || (english.endsWith(":") && label.startsWith(english))) {
        label = translated + label.slice(english.length);
      }
    }
    if (label !== before) el.setAttribute("aria-label", label);
    // Gradio's empty-value placeholder is a labelled <div> with no role (axe: aria-allowed-attr).
    if (label && el.tagName === "DIV" && !el.getAttribute("role") && el.classList.contains("empty")) {
      el.setAttribute("role", "img");
    }
  };
  new MutationObserver((changes) => changes.forEach((c) => {
    if (c.type === "attributes") clean(c.target);
    c.addedNodes && c.addedNodes.forEach((n) => n.querySelectorAll &&
      [n, ...n.querySelectorAll("[aria-label]")].forEach((e) => e.getAttribute && clean(e)));
  })).observe(document.documentElement, {subtree: true, childList: true, attributes: true, attributeFilter: ["aria-label", "lang"]});
  // An [n] marker opens its source (folded in « Sources ») and scrolls to it.
  document.addEventListener("click", (event) => {
    const marker = event.target.closest && event.target.closest("a.ia-marker");
    const target = marker && document.getElementById(marker.getAttribute("href").slice(1));
    if (!target) return;
    event.preventDefault();
    for (let d = target.closest("details"); d; d = d.parentElement.closest("details")) d.open = true;
    target.scrollIntoView({block: "nearest", behavior: "smooth"});
    target.focus && target.setAttribute("tabindex", "-1");
    target.focus && target.focus({preventScroll: true});
  });
  new MutationObserver(() => { if (document.documentElement.lang !== "fr") document.documentElement.lang = "fr"; })
    .observe(document.documentElement, {attributes: true, attributeFilter: ["lang"]});
})();
</script>"""


class FrenchPage:
    """ASGI middleware: the app's HTML page (not the API, not files) gets ``lang="fr"`` and ``SCRIPT``
    as the first thing in its ``<head>``."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope.get("type") != "http" or scope.get("method") != "GET" or not scope.get("path", "").endswith("/"):
            await self.app(scope, receive, send)
            return
        start: dict = {}
        chunks: list[bytes] = []

        async def capture(message: dict) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
                headers = dict(message.get("headers", []))
                if not headers.get(b"content-type", b"").startswith(b"text/html") or b"content-encoding" in headers:
                    start["passthrough"] = True
                    await send(message)
                return
            if start.get("passthrough"):
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return
            page = b"".join(chunks).decode("utf-8")
            page = page.replace('<html lang="en"', '<html lang="fr"', 1)
            page = page.replace("<head>", "<head>" + SCRIPT, 1)
            body = page.encode("utf-8")
            headers = [(k, v) for k, v in start.get("headers", []) if k != b"content-length"]
            headers.append((b"content-length", str(len(body)).encode()))
            await send({"type": "http.response.start", "status": start["status"], "headers": headers})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, capture)
