"""The corpus's original files served read-only (ui/files.py), through real HTTP requests on the
middleware: only regular files of the corpus folder, never a path or a link leading out of it."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from ui.files import DocumentFiles


async def _inner(scope, receive, send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"app"})


def _get(app, path: str, method: str = "GET") -> httpx.Response:
    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            return await client.request(method, path)

    return asyncio.run(go())


@pytest.fixture()
def corpus(tmp_path):
    root = tmp_path / "corpus"
    (root / "rapports").mkdir(parents=True)
    (root / "rapports" / "bilan 2024.pdf").write_bytes(b"%PDF-1.4 fake but served as is")
    (root / "page.html").write_text("<script>alert(1)</script><p>Bonjour</p>", encoding="utf-8")
    (root / ".cache").mkdir()
    (root / ".cache" / "x.txt").write_text("caché", encoding="utf-8")
    (tmp_path / "secret.txt").write_text("secret", encoding="utf-8")
    (root / "lien.txt").symlink_to(tmp_path / "secret.txt")
    (root / "notes.py").write_text("print(1)", encoding="utf-8")
    return root


def test_serves_corpus_files_and_nothing_else(corpus) -> None:
    app = DocumentFiles(_inner, corpus)
    pdf = _get(app, "/documents/rapports/bilan%202024.pdf")
    assert pdf.status_code == 200 and pdf.content == b"%PDF-1.4 fake but served as is"
    assert pdf.headers["content-type"] == "application/pdf" and "content-security-policy" not in pdf.headers
    page = _get(app, "/documents/page.html")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/plain")
    assert page.headers["content-security-policy"].startswith("sandbox")
    assert _get(app, "/documents/page.html", "HEAD").content == b""
    for refused in ("/documents/lien.txt", "/documents/..%2Fsecret.txt", "/documents/rapports/..%2F..%2Fsecret.txt",
                    "/documents/.cache/x.txt", "/documents/notes.py", "/documents/", "/documents/rapports",
                    "/documents/%2Ftmp", "/documents/page.html%00.txt"):
        assert _get(app, refused).status_code == 404, refused
    assert _get(app, "/documents/page.html", "DELETE").status_code == 405
    assert _get(app, "/documents/page.html", "PUT").status_code == 405
    assert (corpus / "page.html").exists()
    assert _get(app, "/autre").text == "app", "other paths go to the app"
