"""The corpus's original files, served read-only at ``/documents/<source>`` for the Sources links.

Only a regular file of a supported type inside the corpus folder is ever served: the resolved path
must stay inside the folder (no ``..``, no symlink leading out), hidden files and folders are not
served, and only GET / HEAD are answered. With users configured, the same sign-in as the app is
required. A web page of the corpus is sent as plain text (shown, never run, on this origin); every
response forbids content sniffing, and all but PDFs are sandboxed.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path
from typing import Any, Callable

from assistant.library import corpus_file

from .access import json_response, signed_in

PREFIX = "/documents/"
MAX_SOURCE_CHARS = 1024  # longer than any path the corpus can hold: not one of its files
MAX_SOURCE_PARTS = 64
_TYPES = {".md": "text/plain; charset=utf-8", ".txt": "text/plain; charset=utf-8",
          ".html": "text/plain; charset=utf-8", ".htm": "text/plain; charset=utf-8"}


def document_link(source: str, page: int | None = None) -> str:
    """The link (relative to the app's root) that opens a corpus file, at its page for a PDF."""
    from urllib.parse import quote

    return f"documents/{quote(source)}" + (f"#page={int(page)}" if page else "")


class DocumentFiles:
    """ASGI middleware answering ``/documents/...`` from the corpus folder; everything else passes."""

    def __init__(self, app: Any, corpus_dir: str | Path) -> None:
        self.app, self.root = app, Path(corpus_dir).resolve()

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        path = scope.get("path", "") if scope.get("type") == "http" else ""
        if not path.startswith(PREFIX):
            await self.app(scope, receive, send)
            return
        if scope.get("method") not in ("GET", "HEAD"):
            await json_response(send, 405, {"detail": "Lecture seule."}, [(b"allow", b"GET, HEAD")])
            return
        if not signed_in(scope):
            await json_response(send, 401, {"detail": "Non authentifié."}, [])
            return
        # The server has already decoded the path once (``%20`` is a space, ``%2520`` a file name
        # holding ``%20``): decoding it again would open another file, or none.
        target = self.resolve(path[len(PREFIX):])
        if target is None:
            await json_response(send, 404, {"detail": "Document introuvable."}, [])
            return
        try:
            body = target.read_bytes()
        except OSError:  # removed or replaced meanwhile
            await json_response(send, 404, {"detail": "Document introuvable."}, [])
            return
        kind = _TYPES.get(target.suffix.lower()) or mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        headers = [(b"content-type", kind.encode()), (b"content-length", str(len(body)).encode()),
                   (b"content-disposition", b"inline"), (b"x-content-type-options", b"nosniff"),
                   (b"cache-control", b"no-store")]
        if target.suffix.lower() != ".pdf":  # the browser's PDF viewer does not open in a sandboxed page
            headers.append((b"content-security-policy", b"sandbox; default-src 'none'"))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if scope.get("method") == "HEAD" else body})

    def resolve(self, source: str) -> Path | None:
        """The file ``source`` names inside the corpus, or None when it is not one to serve (a
        path too long or too deep for any file of the corpus is none, without asking the disk)."""
        if len(source) > MAX_SOURCE_CHARS or source.count("/") >= MAX_SOURCE_PARTS:
            return None
        try:
            return corpus_file(self.root, source)
        except (OSError, ValueError, RecursionError):  # a name the system cannot even look up
            return None
