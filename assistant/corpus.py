"""Reading the source documents (``.txt``, ``.md``, ``.pdf``, ``.docx``, ``.odt``, ``.html``, in sub-folders)
and their metadata.

Metadata comes from ``manifest.toml`` in the corpus folder (one ``[files."name.txt"]`` table per
file) or from a front-matter block (``---`` / ``key: value`` lines / ``---``) at the top of the
file; a web page's canonical address (or ``url`` in the metadata) is kept for citations. Offsets
everywhere are into the document's text (a text file's whole content, front matter included; the
text extracted from a PDF, Word, OpenDocument or HTML file), so that ``document.text[start:end]``
is always what a citation shows. A file that cannot be a document is left out with its reason.
"""

from __future__ import annotations

import bisect
import hashlib
import io
import logging
import re
import tomllib
import unicodedata
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .errors import AssistantError

log = logging.getLogger("assistant")
SUPPORTED_SUFFIXES = (".txt", ".md", ".pdf", ".docx", ".odt", ".html", ".htm")
# Text where more than this share of characters are control or unassigned code points is binary
# data that happens to decode, not a document.
MAX_UNPRINTABLE_SHARE = 0.1
DEFAULT_MAX_BYTES = 50_000_000
MANIFEST = "manifest.toml"
_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)\n---[ \t]*\n", re.DOTALL)


@dataclass(frozen=True)
class Document:
    id: str
    title: str
    source: str  # file name inside the corpus folder
    text: str  # the whole file, decoded
    body_start: int  # where the content starts (after any front matter)
    sha256: str
    metadata: dict = field(default_factory=dict)
    pages: tuple[int, ...] = ()  # PDF: where each page starts in ``text`` (page n at pages[n - 1])

    def page_at(self, offset: int) -> int | None:
        """The 1-based page holding ``offset`` (None for documents without pages)."""
        return bisect.bisect_right(self.pages, offset) if self.pages else None

    @property
    def url(self) -> str | None:
        """Where the document lives on the web (a page's canonical address, or ``url`` in the metadata)."""
        url = self.metadata.get("url")
        return url if isinstance(url, str) and re.match(r"https?://\S+$", url) else None

    def to_dict(self) -> dict:
        data = asdict(self)
        data.pop("text")
        return data


def _read_manifest(corpus_dir: Path) -> dict[str, dict]:
    path = corpus_dir / MANIFEST
    if not path.exists():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise AssistantError(f"Le manifeste {path} est invalide ({exc}) : corrigez-le.") from exc
    unknown = [key for key in data if key != "files"]
    if unknown:
        raise AssistantError(f"Le manifeste {path} est invalide : clé « {unknown[0]} » inconnue (les métadonnées "
                             'vont dans une table [files."nom.txt"]).')
    files = data.get("files", {})
    if not isinstance(files, dict):
        raise AssistantError(f"Le manifeste {path} est invalide : « files » doit être une table "
                             '([files."nom.txt"] title = "...").')
    for name, table in files.items():
        if not isinstance(table, dict):
            raise AssistantError(f"Le manifeste {path} est invalide : l'entrée « {name} » doit être une table "
                                 f'([files."{name}"] suivi de lignes clé = "valeur"), pas {type(table).__name__}.')
        for key in ("id", "title"):
            if key in table and not isinstance(table[key], str):
                raise AssistantError(f"Le manifeste {path} est invalide : « {key} » de « {name} » doit être du texte.")
    return files


def _front_matter(text: str) -> tuple[dict, int]:
    match = _FRONT_MATTER.match(text)
    if not match:
        return {}, 0
    meta = {}
    for line in match.group(1).splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip():
            meta[key.strip()] = value.strip().strip('"')
    return meta, match.end()


@dataclass(frozen=True)
class Failure:
    """A file of the corpus that could not be read as a document, and why (in French, for the user)."""

    source: str
    reason: str

    def to_dict(self) -> dict:
        return asdict(self)


def read_corpus(corpus_dir: str | Path, max_bytes: int = DEFAULT_MAX_BYTES) -> tuple[list[Document], list[Failure]]:
    """Every supported file under the folder (sub-folders included), sorted by path, and the files
    left out with their reason: one unreadable file never stops the others. Only a missing or
    unreadable folder, a broken manifest, or a folder with no usable document is an error."""
    corpus_dir = Path(corpus_dir)
    if not corpus_dir.is_dir():
        raise AssistantError(f"Dossier du corpus introuvable : {corpus_dir}. Indiquez-le avec --corpus.")
    manifest = _read_manifest(corpus_dir)
    root = corpus_dir.resolve()
    try:
        paths = sorted(p for p in corpus_dir.rglob("*") if p.suffix.lower() in SUPPORTED_SUFFIXES and p.is_file()
                       and not any(part.startswith(".") for part in p.relative_to(corpus_dir).parts))
    except PermissionError as exc:
        raise AssistantError(f"Dossier du corpus illisible : {corpus_dir} (droits d'accès).") from exc
    documents, failures = [], []
    for path in paths:
        source = path.relative_to(corpus_dir).as_posix()
        if not path.resolve().is_relative_to(root):  # nothing outside the corpus folder is ever read
            failures.append(Failure(source, "lien vers un fichier hors du dossier du corpus (non suivi)"))
            continue
        try:
            document = _read_document(path, source, manifest, max_bytes)
        except _Unusable as exc:
            failures.append(Failure(source, str(exc)))
            continue
        documents.append(document)
    for failure in failures:
        log.warning("%s laissé de côté : %s.", failure.source, failure.reason)
    if not documents:
        detail = f" ({len(failures)} fichier(s) illisible(s) : {failures[0].source}, {failures[0].reason})" if failures else ""
        raise AssistantError(
            f"Le corpus {corpus_dir} ne contient aucun document utilisable ({', '.join(SUPPORTED_SUFFIXES)}){detail} : "
            "ajoutez-en au moins un."
        )
    return documents, failures


def load_corpus(corpus_dir: str | Path, max_bytes: int = DEFAULT_MAX_BYTES) -> list[Document]:
    """The readable documents of the folder (files left out are logged with their reason)."""
    return read_corpus(corpus_dir, max_bytes)[0]


class _Unusable(Exception):
    """A file that is not a usable document; the message is the reason shown to the user."""


def _read_document(path: Path, source: str, manifest: dict[str, dict], max_bytes: int) -> Document:
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise _Unusable(f"trop volumineux ({size / 1e6:.1f} Mo, limite {max_bytes / 1e6:.0f} Mo : réglage max_document_bytes)")
        raw = path.read_bytes()
    except OSError as exc:
        raise _Unusable(f"illisible ({exc.strerror})") from exc
    pages: tuple[int, ...] = ()
    page_meta: dict = {}
    suffix = path.suffix.lower()
    if suffix == ".pdf":
        text, pages = _pdf_text(raw)
    elif suffix == ".docx":
        text = _docx_text(raw)
    elif suffix == ".odt":
        text = _odt_text(raw)
    elif suffix in (".html", ".htm"):
        text, page_meta = _html_text(raw)
    else:
        text = _decode(raw)
    if text is None:
        raise _Unusable("ni UTF-8 ni Windows-1252 : convertissez-le en UTF-8")
    if _unprintable_share(text) > MAX_UNPRINTABLE_SHARE:
        raise _Unusable("pas du texte (caractères de contrôle ou binaires)")
    meta, body_start = _front_matter(text)
    meta = {**page_meta, **manifest.get(source, manifest.get(path.name, {})), **meta}
    if not text[body_start:].strip():
        raise _Unusable("vide")
    stem = Path(source).with_suffix("").as_posix()
    return Document(
        id=str(meta.get("id") or stem),
        title=str(meta.get("title") or path.stem.replace("-", " ").replace("_", " ").strip()),
        source=source,
        text=text,
        body_start=body_start,
        sha256=hashlib.sha256(raw).hexdigest(),
        metadata={k: v for k, v in meta.items() if k not in {"id", "title"}},
        pages=pages,
    )


def _pdf_text(raw: bytes) -> tuple[str, tuple[int, ...]]:
    """The text layer of a PDF (pypdf), page by page, with what print layout adds removed: running
    headers and footers (a first or last line found on most pages, page numbers aside) and words
    hyphenated at a line end. Pages are joined by a blank line; their start offsets are returned."""
    from pypdf import PdfReader

    try:
        reader = PdfReader(io.BytesIO(raw))
        pages = [page.extract_text() or "" for page in reader.pages]
    except Exception as exc:  # noqa: BLE001 - a parser fed any bytes may fail any way: the file is unreadable
        raise _Unusable(f"PDF illisible ({type(exc).__name__})") from exc
    if not any(page.strip() for page in pages):
        raise _Unusable("PDF sans couche texte (une image scannée ?) : passez-le d'abord dans un logiciel d'OCR")
    lines = [[line for line in page.splitlines()] for page in pages]

    def shape(line: str) -> str:
        return re.sub(r"\d+", "#", line.strip().casefold())

    edges: dict[str, int] = {}
    for page in lines:
        content = [line for line in page if line.strip()]
        for line in {shape(x) for x in content[:2] + content[-2:]}:
            edges[line] = edges.get(line, 0) + 1
    running = {line for line, count in edges.items() if line and len(pages) >= 3 and count >= 0.6 * len(pages)}
    text, starts = "", []
    for page in lines:
        kept = "\n".join(line for line in page if shape(line) not in running).strip()
        kept = re.sub(r"(?<=[a-zà-ÿ])-\n(?=[a-zà-ÿ])", "", kept)  # « dévelop-\npement » -> « développement »
        if text:
            text += "\n\n"
        starts.append(len(text))
        text += kept
    return text, tuple(starts)


def _docx_text(raw: bytes) -> str:
    """A Word document (python-docx) as Markdown-shaped text: headings from their styles (« Heading 2 »,
    « Titre 2 ») become ``##`` lines, so sections come from the document's own structure; list
    paragraphs become ``-`` items, tables one line per row; body order kept."""
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    try:
        document = docx.Document(io.BytesIO(raw))
        blocks: list[str] = []
        for child in document.element.body.iterchildren():
            if child.tag.endswith("}p"):
                paragraph = Paragraph(child, document)
                text = " ".join(paragraph.text.split())
                if not text:
                    continue
                style = (paragraph.style.name if paragraph.style is not None else "") or ""
                level = re.match(r"(?i)(heading|titre)\s*(\d)", style)
                if level or style.casefold() in ("title", "titre"):
                    blocks.append("#" * (int(level.group(2)) if level else 1) + " " + text)
                elif "list" in style.casefold() or "liste" in style.casefold():
                    if blocks and blocks[-1].startswith("- "):
                        blocks[-1] += "\n- " + text  # consecutive items: one enumeration
                    else:
                        blocks.append("- " + text)
                else:
                    blocks.append(text)
            elif child.tag.endswith("}tbl"):
                rows = [" | ".join(" ".join(cell.text.split()) for cell in row.cells) for row in Table(child, document).rows]
                blocks.append("\n".join(row for row in rows if row.strip(" |")))
    except Exception as exc:  # noqa: BLE001 - a parser fed any bytes may fail any way: the file is unreadable
        raise _Unusable(f"document Word illisible ({type(exc).__name__})") from exc
    return "\n\n".join(block for block in blocks if block.strip())


def _odt_text(raw: bytes) -> str:
    """An OpenDocument text (odfdo) as Markdown: its outline headings become sections, lists ``-``
    items, tables one line per row (the Markdown separator rows dropped)."""
    from odfdo import Document as OdfDocument

    try:
        markdown = OdfDocument(io.BytesIO(raw)).to_markdown()
    except Exception as exc:  # noqa: BLE001 - a parser fed any bytes may fail any way: the file is unreadable
        raise _Unusable(f"document OpenDocument illisible ({type(exc).__name__})") from exc
    lines = (line.strip() for line in markdown.splitlines())
    kept = (re.sub(r"^-\s+", "- ", line) for line in lines if not re.fullmatch(r"\|?[-:| ]+\|?", line) or not line)
    return re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip()


def _html_text(raw: bytes) -> tuple[str, dict]:
    """A web page's main content (trafilatura: navigation, cookie banners, footers and comments
    left out) as Markdown, headings as sections; its title and canonical address as metadata."""
    import trafilatura

    html = _decode(raw)
    if html is None:
        raise _Unusable("page HTML ni UTF-8 ni Windows-1252 : convertissez-la en UTF-8")
    try:
        text = trafilatura.extract(html, output_format="markdown", include_tables=True, include_formatting=True,
                                   include_links=False, include_images=False, include_comments=False) or ""
        found = trafilatura.extract_metadata(html)
    except Exception as exc:  # noqa: BLE001 - a parser fed any bytes may fail any way: the file is unreadable
        raise _Unusable(f"page HTML illisible ({type(exc).__name__})") from exc
    meta = {}
    if found is not None and found.title:
        meta["title"] = found.title
    if found is not None and found.url and re.match(r"https?://", found.url):
        meta["url"] = found.url
    # Markdown emphasis marks are layout, not words: a citation quotes the words.
    text = re.sub(r"(\*\*|__)(.+?)\1", r"\2", text)
    return "\n".join(line.rstrip() for line in text.splitlines()).strip(), meta


def _decode(raw: bytes) -> str | None:
    """UTF-8 (a byte-order mark is text, kept for exact offsets), else Windows-1252, the usual
    encoding of French text files written on Windows; None when neither reads it."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("cp1252")
    except UnicodeDecodeError:
        return None


def _unprintable_share(text: str) -> float:
    """Share of characters that are control codes or unassigned (line breaks and tabs are text)."""
    if not text:
        return 0.0
    bad = sum(1 for c in text if c not in "\n\r\t" and unicodedata.category(c) in ("Cc", "Cn", "Co", "Cs"))
    return bad / len(text)
