"""The document library behind the corpus folder: what it holds and how each file stands in the
index, adding an uploaded file, removing one. Re-indexing is ``Assistant.update``.

Nothing outside the corpus folder is ever written: an uploaded file's name is reduced to a plain
file name, its content must match its type, it is written beside its final place then linked in
(never over an existing file), and a removed file is moved to the hidden ``.corbeille`` folder of
the corpus (skipped when reading), not deleted.
"""

from __future__ import annotations

import io
import os
import re
import tempfile
import unicodedata
import zipfile
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from .corpus import SUPPORTED_SUFFIXES, read_corpus, source_name, text_encoding
from .errors import AssistantError
from .stores import Store

TRASH = ".corbeille"
_MAX_NAME = 120


@dataclass(frozen=True)
class DocumentInfo:
    """One file of the corpus folder as the library sees it."""

    source: str
    title: str
    status: str  # "indexed", "new" (not indexed yet), "changed" (index is older), "failed"
    reason: str = ""  # why a failed file was left out
    pages: int | None = None
    sections: int = 0
    chunks: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


class Library:
    """The corpus folder of ``corpus_dir``, files up to ``max_bytes``."""

    def __init__(self, corpus_dir: str | Path, max_bytes: int) -> None:
        self.root, self.max_bytes = Path(corpus_dir), max_bytes
        self._read: tuple[tuple, list, list] | None = None  # the folder's signature and what was read

    def catalogue(self, index: Store) -> list[DocumentInfo]:
        """Every file of the folder, readable or not, with what the published ``index`` holds of it.
        The folder is read again only when a file's size or time changed (a PDF of 1,000 pages
        takes seconds to read)."""
        signature = self._signature()
        if self._read is None or self._read[0] != signature:
            try:
                documents, failures = read_corpus(self.root, self.max_bytes)
            except AssistantError:
                documents, failures = [], []  # no usable document: nothing to list
            self._read = (signature, documents, failures)
        _, documents, failures = self._read
        indexed = index.manifest.get("corpus", {})
        chunks: dict[str, list] = {}
        for chunk in index.chunks:
            chunks.setdefault(chunk.source, []).append(chunk)
        entries = [DocumentInfo(
            source=d.source, title=d.title,
            status="indexed" if indexed.get(d.source) == d.sha256 else "changed" if d.source in indexed else "new",
            pages=len(d.pages) or None, sections=len({c.section for c in chunks.get(d.source, [])}),
            chunks=len(chunks.get(d.source, []))) for d in documents]
        entries += [DocumentInfo(source=f.source, title=Path(f.source).stem, status="failed", reason=f.reason)
                    for f in failures]
        return sorted(entries, key=lambda e: e.source)

    def _signature(self) -> tuple:
        try:
            return tuple(sorted((p.relative_to(self.root).as_posix(), p.stat().st_size, p.stat().st_mtime_ns)
                                for p in self.root.rglob("*") if p.is_file()))
        except OSError:
            return ()

    def add(self, name: str, content: bytes) -> str:
        """Store an uploaded file in the corpus folder; returns its ``source``. Raises ``ValueError``
        (a French message) for a name, type, size or content that cannot be a document, or a name
        already taken (remove the old file first: nothing is overwritten)."""
        filename = safe_name(name)
        suffix = Path(filename).suffix.lower()
        if len(content) > self.max_bytes:
            raise ValueError(f"« {filename} » est trop volumineux ({len(content) / 1e6:.1f} Mo ; limite "
                             f"{self.max_bytes / 1e6:.0f} Mo).")
        if not content.strip():
            raise ValueError(f"« {filename} » est vide.")
        if not matches_type(suffix, content):
            raise ValueError(f"Le contenu de « {filename} » n'est pas celui d'un fichier {suffix} : "
                             "vérifiez le fichier ou son extension.")
        self.root.mkdir(parents=True, exist_ok=True)
        target = self.root / filename
        handle, temporary = tempfile.mkstemp(prefix=".upload-", dir=self.root)
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(content)
                out.flush()
                os.fsync(out.fileno())
            try:
                os.link(temporary, target)  # atomic, and refuses to replace an existing file
            except FileExistsError:
                raise ValueError(f"Un document « {filename} » existe déjà : retirez-le d'abord pour le "
                                 "remplacer.") from None
        finally:
            os.unlink(temporary)
        return filename

    def remove(self, source: str) -> Path:
        """Move a file of the corpus to its ``.corbeille`` folder (kept, no longer indexed); returns
        where it went."""
        target = self._inside(source)
        trash = self.root / TRASH
        trash.mkdir(exist_ok=True)
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")
        kept = trash / f"{stamp}-{target.name}"
        os.replace(target, kept)
        return kept

    def _inside(self, source: str) -> Path:
        path = corpus_file(self.root, source)
        if path is None or path.is_symlink():
            raise ValueError(f"« {source} » n'est pas un document du corpus.")
        return path


def corpus_file(root: str | Path, source: str) -> Path | None:
    """The file ``source`` (a path relative to the corpus folder ``root``) names, or None when it is
    not a document of the folder: empty, absolute, with a NUL, through a hidden or ``..`` part, of
    an unsupported type, not a regular file, or leading outside the folder or to a hidden file
    once links are resolved. A name that is not UTF-8 on disk is found by its ``source``, the
    decoded name the index knows it by (``corpus.source_name``)."""
    root = Path(root)
    if not source or "\x00" in source or source.startswith("/"):
        return None
    if any(part.startswith(".") for part in Path(source).parts):  # hidden, "." and ".." alike
        return None
    path = root / source
    try:
        if not os.path.lexists(path):
            path = _undecoded(root, source)
            if path is None:
                return None
        target = path.resolve()
        inside = root.resolve()
    except (OSError, RuntimeError):
        return None
    if (not target.is_relative_to(inside) or not target.is_file()
            or any(part.startswith(".") for part in target.relative_to(inside).parts)
            or {path.suffix.lower(), target.suffix.lower()} - set(SUPPORTED_SUFFIXES)):
        return None
    return path


def _undecoded(root: Path, source: str) -> Path | None:
    """The path whose parts, decoded as ``corpus.source_name`` decodes names that are not UTF-8,
    are those of ``source`` (None: no such file)."""
    path = root
    for part in Path(source).parts:
        if os.path.lexists(path / part):
            path = path / part
            continue
        try:
            names = os.listdir(path)
        except OSError:
            return None
        match = next((name for name in sorted(names) if source_name(name) == part and name != part), None)
        if match is None:
            return None
        path = path / match
    return path


def safe_name(name: str) -> str:
    """A plain file name from what a browser sent: no folders, no control or odd characters, a
    supported extension. Raises ``ValueError`` when nothing usable is left."""
    base = re.split(r"[\\/]", unicodedata.normalize("NFC", str(name)))[-1]
    base = "".join(c for c in base if unicodedata.category(c)[0] != "C")
    base = re.sub(r"[^\w .()+,'-]", "_", base).strip(" .")
    base = re.sub(r"\s+", " ", base)
    stem, suffix = os.path.splitext(base)
    suffix = suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES or not stem.strip(" ._"):
        raise ValueError(f"« {name} » : type de fichier non pris en charge (acceptés : {', '.join(SUPPORTED_SUFFIXES)}).")
    return stem[:_MAX_NAME - len(suffix)].rstrip(" .") + suffix


def matches_type(suffix: str, content: bytes) -> bool:
    """Does the content look like a file of this type (magic bytes and structure, not the name)?"""
    if suffix == ".pdf":
        return content.lstrip()[:5] == b"%PDF-"
    if suffix in (".docx", ".odt"):
        try:
            with zipfile.ZipFile(io.BytesIO(content)) as archive:
                names = set(archive.namelist())
                if suffix == ".docx":
                    return "word/document.xml" in names
                return ("mimetype" in names and archive.getinfo("mimetype").file_size <= 100  # never unpack a bomb
                        and archive.read("mimetype").strip() == b"application/vnd.oasis.opendocument.text")
        except (zipfile.BadZipFile, KeyError, OSError, ValueError):
            return False
    codec = text_encoding(content)
    if codec is not None:  # UTF-16 or UTF-32 text (Notepad's « Unicode »): its NUL bytes are text
        content = content[:16384].decode(codec, errors="ignore").encode("utf-8")
    if content[:5] == b"%PDF-" or content[:4] == b"PK\x03\x04" or b"\x00" in content[:4096]:
        return False  # a binary file renamed as text
    if suffix in (".html", ".htm"):
        head = content[:4096].lower()
        return any(tag in head for tag in (b"<html", b"<!doctype html", b"<body", b"<head", b"<p", b"<div"))
    return True  # .txt / .md: the corpus reader decides whether it is text (encoding, control characters)
