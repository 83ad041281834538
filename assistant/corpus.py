"""Reading the source documents (``.txt``, ``.md``, ``.pdf``, ``.docx``, ``.odt``, ``.html``, in sub-folders)
and their metadata.

Metadata comes from ``manifest.toml`` in the corpus folder (one ``[files."name.txt"]`` table per
file) or from a front-matter block (``---`` / ``key: value`` lines / ``---``) at the top of the
file; a web page's canonical address (or ``url`` in the metadata) is kept for citations. Offsets
everywhere are into the document's text (a text file's whole content, front matter included; the
text extracted from a PDF, Word, OpenDocument or HTML file), so that ``document.text[start:end]``
is always what a citation shows. A file that cannot be a document is left out with its reason.

Hostile files stay bounded: a Word or OpenDocument archive is measured from its zip directory
before anything is unpacked (``MAX_UNPACKED_BYTES``, ``MAX_ARCHIVE_ENTRIES``), and PDF, Word,
OpenDocument and HTML files are parsed in a child process with a time and memory budget
(``PARSE_SECONDS``, ``PARSE_MEMORY_BYTES``): a file over either is left out with its reason, and
the other files are read. A file reached twice (a link beside it) is read once; a link to a hidden
file or out of the folder is not followed; a name that is not UTF-8 is shown decoded
(``source_name``).
"""

from __future__ import annotations

import atexit
import bisect
import codecs
import hashlib
import io
import json
import logging
import os
import re
import select
import subprocess
import sys
import threading
import time
import tomllib
import unicodedata
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .errors import AssistantError

log = logging.getLogger("assistant")
SUPPORTED_SUFFIXES = (".txt", ".md", ".pdf", ".docx", ".odt", ".html", ".htm")
# Text where more than this share of characters are control or unassigned code points is binary
# data that happens to decode, not a document.
MAX_UNPRINTABLE_SHARE = 0.1
DEFAULT_MAX_BYTES = 50_000_000
# A Word or OpenDocument file is a zip archive: refused, from its directory and before anything is
# unpacked, when its entries would unpack to more than this, or when it holds more entries than this
# (a « zip bomb »: 7 MB of zip that unpack to 1 GB pushed an index build past 6 GB).
MAX_UNPACKED_BYTES = 200_000_000
MAX_ARCHIVE_ENTRIES = 10_000
# Every PDF, Word, OpenDocument and HTML file is parsed in a child process: left out when its parsing
# takes longer than this, or needs more memory than this above the child's own.
PARSE_SECONDS = 60.0
PARSE_MEMORY_BYTES = 1_000_000_000
_PARSED_APART = (".pdf", ".docx", ".odt", ".html", ".htm")
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
        paths, unreadable = _corpus_paths(corpus_dir)
    except PermissionError as exc:
        raise AssistantError(f"Dossier du corpus illisible : {corpus_dir} (droits d'accès).") from exc
    documents, failures = [], [Failure(source_name(folder.relative_to(corpus_dir)), "dossier illisible (droits d'accès)")
                               for folder in unreadable]
    sources = {path: source_name(path.relative_to(corpus_dir)) for path in paths}
    # The same file reached twice (a link beside it, a hard link) is read once, under the name of
    # the one that is not a link.
    owners: dict[tuple[int, int], Path] = {}
    for path in sorted(paths, key=lambda p: (p.is_symlink(), p)):
        try:
            status = path.stat()
        except OSError:
            continue
        owners.setdefault((status.st_dev, status.st_ino), path)
    taken: dict[str, Path] = {}
    for path in paths:
        source = sources[path]
        try:
            target = path.resolve()
            status = path.stat()
        except (OSError, RuntimeError) as exc:
            failures.append(Failure(source, f"illisible ({getattr(exc, 'strerror', None) or type(exc).__name__})"))
            continue
        if not target.is_relative_to(root):  # nothing outside the corpus folder is ever read
            failures.append(Failure(source, "lien vers un fichier hors du dossier du corpus (non suivi)"))
            continue
        if any(part.startswith(".") for part in target.relative_to(root).parts):
            failures.append(Failure(source, "lien vers un fichier caché (non suivi)"))
            continue
        owner = owners.get((status.st_dev, status.st_ino), path)
        if owner != path:
            failures.append(Failure(source, f"même fichier que « {sources[owner]} » (lu une seule fois)"))
            continue
        if source in taken:  # a name that is not UTF-8, read as another file's name
            escaped = os.fsencode(path.relative_to(corpus_dir)).decode("utf-8", "backslashreplace")
            failures.append(Failure(escaped, f"nom qui n'est pas de l'UTF-8 et qui, décodé, est celui de « {source} » : "
                                             "renommez-le"))
            continue
        taken[source] = path
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


def _corpus_paths(corpus_dir: Path) -> tuple[list[Path], list[Path]]:
    """Every file of a supported type under the folder, sorted, and the sub-folders that could not
    be listed: hidden files and folders are skipped, and links to folders are not walked (a link to
    a file is read if it stays inside the folder and is not hidden). ``PermissionError`` when the
    folder itself cannot be listed."""
    os.listdir(corpus_dir)  # an unreadable corpus folder is an error, not an empty corpus
    paths, unreadable = [], []
    for folder, folders, files in os.walk(corpus_dir, followlinks=False,
                                          onerror=lambda exc: unreadable.append(Path(exc.filename))):
        folders[:] = [name for name in folders if not name.startswith(".")]
        for name in files:
            path = Path(folder) / name
            if not name.startswith(".") and path.suffix.lower() in SUPPORTED_SUFFIXES and path.is_file():
                paths.append(path)
    return sorted(paths), sorted(unreadable)


_UNDECODED = re.compile("[\udc80-\udcff]")


def source_name(relative: str | Path) -> str:
    """A file's ``source`` (its path inside the corpus folder, ``/``-separated) as text that is
    valid UTF-8 everywhere (ids, JSON, the index's files): in a name that is not UTF-8 (e.g.
    ``rapport-\\xe9t\\xe9.txt`` written by an old Windows tool), each byte that is not is read as
    Windows-1252, the usual encoding of such names (« rapport-été.txt »). The same on every run."""
    text = Path(relative).as_posix() if isinstance(relative, Path) else str(relative)
    return _UNDECODED.sub(lambda m: bytes([ord(m.group()) - 0xDC00]).decode("cp1252", errors="replace"), text)


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
    suffix = path.suffix.lower()
    if suffix in (".docx", ".odt"):
        _check_archive(raw, suffix)  # from the zip directory, before anything is unpacked
    if suffix in _PARSED_APART:
        text, pages, page_meta = _parser.parse(suffix, raw)
    else:
        text, pages, page_meta = _extract(suffix, raw)
    if text is None:
        raise _Unusable("ni UTF-8 ni Windows-1252 : convertissez-le en UTF-8")
    if _unprintable_share(text) > MAX_UNPRINTABLE_SHARE:
        raise _Unusable("pas du texte (caractères de contrôle ou binaires)")
    meta, body_start = _front_matter(text)
    meta = {**page_meta, **manifest.get(source, manifest.get(Path(source).name, {})), **meta}
    if not text[body_start:].strip():
        raise _Unusable("vide")
    stem = Path(source).with_suffix("").as_posix()
    return Document(
        id=str(meta.get("id") or stem),
        title=str(meta.get("title") or Path(source).stem.replace("-", " ").replace("_", " ").strip()),
        source=source,
        text=text,
        body_start=body_start,
        sha256=hashlib.sha256(raw).hexdigest(),
        metadata={k: v for k, v in meta.items() if k not in {"id", "title"}},
        pages=pages,
    )


def _check_archive(raw: bytes, suffix: str) -> None:
    """A Word or OpenDocument file is a zip archive: refused from its directory, before anything
    is unpacked, when its entries would unpack to more than ``MAX_UNPACKED_BYTES`` or number more
    than ``MAX_ARCHIVE_ENTRIES``. (The declared sizes bound what is read: Python's zip reader,
    which python-docx and odfdo use, stops at an entry's declared size.)"""
    kind = "document Word" if suffix == ".docx" else "document OpenDocument"
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            entries = archive.infolist()
    except Exception as exc:  # noqa: BLE001 - a zip reader fed any bytes may fail any way
        raise _Unusable(f"{kind} illisible ({type(exc).__name__})") from exc
    if len(entries) > MAX_ARCHIVE_ENTRIES:
        raise _Unusable(f"{kind} refusé : son archive compte {len(entries)} fichiers (limite {MAX_ARCHIVE_ENTRIES})")
    unpacked = sum(entry.file_size for entry in entries)
    if unpacked > MAX_UNPACKED_BYTES:
        raise _Unusable(f"{kind} refusé : {unpacked / 1e6:.0f} Mo une fois décompressé pour {len(raw) / 1e6:.1f} Mo "
                        f"sur le disque (limite {MAX_UNPACKED_BYTES / 1e6:.0f} Mo ; une « bombe » de décompression ?)")


def _extract(suffix: str, raw: bytes) -> tuple[str | None, tuple[int, ...], dict]:
    """A file's text (None: not decodable), its pages' start offsets (PDF) and the metadata it
    carries (a web page's title and address), by its type."""
    if suffix == ".pdf":
        text, pages = _pdf_text(raw)
        return text, pages, {}
    if suffix == ".docx":
        return _docx_text(raw), (), {}
    if suffix == ".odt":
        return _odt_text(raw), (), {}
    if suffix in (".html", ".htm"):
        text, meta = _html_text(raw)
        return text, (), meta
    return _decode(raw), (), {}


class _ParserProcess:
    """One child process (``python -c``, the same code as this one) that parses PDF, Word,
    OpenDocument and HTML files one at a time, each under a budget: ``PARSE_SECONDS`` of wall time
    (the child is killed, and started again for the next file) and ``PARSE_MEMORY_BYTES`` of
    address space above the child's own (``RLIMIT_AS``). Whatever a file does to its parser
    (a bomb, an endless loop, a crash), this process only reads a reason. Started at the first
    such file, reused by the next reads of the corpus, stopped at exit. Where it cannot run (no
    ``select`` on pipes), files are parsed here, with the zip limits alone."""

    def __init__(self) -> None:
        self._process: subprocess.Popen | None = None
        self._owner = os.getpid()  # a forked copy of this process starts a child of its own
        self._lock = threading.Lock()
        self._unavailable = os.name != "posix" or not hasattr(select, "poll")
        atexit.register(self.stop)

    def parse(self, suffix: str, raw: bytes) -> tuple[str | None, tuple[int, ...], dict]:
        seconds, memory = float(PARSE_SECONDS), int(PARSE_MEMORY_BYTES)
        with self._lock:
            process = self._running()
            if process is None:
                return _extract(suffix, raw)
            try:
                _write_frame(process.stdin, json.dumps({"suffix": suffix, "memory": memory}).encode("utf-8"))
                _write_frame(process.stdin, raw)
                reply = json.loads(_read_frame(process.stdout.fileno(), time.monotonic() + seconds)
                                   .decode("utf-8", "surrogatepass"))
            except TimeoutError:
                self._stop()
                raise _Unusable(f"lecture trop longue (plus de {seconds:g} s) : fichier piégé ou trop complexe, "
                                "à convertir ou découper") from None
            except (OSError, EOFError, ValueError):
                self._stop()
                raise _Unusable("le lecteur de documents s'est arrêté sur ce fichier (fichier piégé ou endommagé ?)") from None
            if "memory" in reply:
                self._stop()  # its heap may stay large: the next file gets a fresh one
                raise _Unusable(f"lecture trop gourmande en mémoire (plus de {memory / 1e6:.0f} Mo) : fichier piégé "
                                "ou trop complexe, à convertir ou découper")
        if "unusable" in reply:
            raise _Unusable(reply["unusable"])
        return reply["text"], tuple(reply["pages"]), reply["meta"]

    def _running(self) -> subprocess.Popen | None:
        if self._owner != os.getpid():
            self._process, self._owner = None, os.getpid()
        if self._process is not None and self._process.poll() is None:
            return self._process
        self._process = None
        if self._unavailable:
            return None
        package_root = str(Path(__file__).resolve().parent.parent)  # this very code, whatever is installed
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))}
        try:
            process = subprocess.Popen(
                [sys.executable, "-c", "from assistant.corpus import _serve_parses; _serve_parses()"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, close_fds=True)
        except OSError as exc:
            log.warning("Lecteur de documents séparé indisponible (%s) : lecture dans ce processus.", exc)
            self._unavailable = True
            return None
        try:
            if json.loads(_read_frame(process.stdout.fileno(), time.monotonic() + 120)) != {"ready": True}:
                raise ValueError("unexpected greeting")
        except (OSError, EOFError, ValueError, TimeoutError) as exc:
            log.warning("Lecteur de documents séparé indisponible (%s) : lecture dans ce processus.", type(exc).__name__)
            self._kill(process)
            self._unavailable = True
            return None
        self._process = process
        return process

    def _stop(self) -> None:
        if self._process is not None and self._owner == os.getpid():
            self._kill(self._process)
        self._process = None

    @staticmethod
    def _kill(process: subprocess.Popen) -> None:
        process.kill()
        process.wait()
        for stream in (process.stdin, process.stdout):
            try:
                stream.close()
            except OSError:
                pass

    def stop(self) -> None:
        """Stop the child (at exit; the next file starts another)."""
        with self._lock:
            self._stop()


_parser = _ParserProcess()


def _write_frame(stream, data: bytes) -> None:
    """One length-prefixed message."""
    stream.write(len(data).to_bytes(8, "big"))
    stream.write(data)
    stream.flush()


def _read_frame(fd: int, deadline: float | None) -> bytes:
    """One length-prefixed message from the file descriptor ``fd`` before ``deadline``
    (``time.monotonic``; None: no deadline): ``TimeoutError`` after, ``EOFError`` when the other
    end is gone."""
    size = int.from_bytes(_read_exactly(fd, 8, deadline), "big")
    return _read_exactly(fd, size, deadline)


def _read_exactly(fd: int, size: int, deadline: float | None) -> bytes:
    parts, left = [], size
    waiting = None
    if deadline is not None:
        waiting = select.poll()  # not select(): a server's descriptors may number over 1024
        waiting.register(fd, select.POLLIN)
    while left:
        if waiting is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not waiting.poll(remaining * 1000):
                raise TimeoutError
        data = os.read(fd, min(left, 1 << 20))
        if not data:
            raise EOFError
        parts.append(data)
        left -= len(data)
    return b"".join(parts)


def _address_space() -> int:
    """This process's virtual memory size in bytes (0 where it cannot be read)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _out_of_memory(exc: BaseException) -> bool:
    """Was ``exc`` (or what caused it) a failed allocation? libxml2 reports one as a syntax error
    (« ERR_NO_MEMORY » in its log)."""
    while exc is not None:
        said = f"{exc} {getattr(exc, 'error_log', '')}"
        if isinstance(exc, MemoryError) or re.search(r"no_memory|memory allocation failed|out of memory|cannot allocate",
                                                     said, re.IGNORECASE):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _serve_parses() -> None:
    """The child's loop (``_ParserProcess``): a request (its type and memory budget, then the
    file's bytes) on stdin, the parsed text or the reason on the original stdout. What a library
    prints goes nowhere."""
    import resource

    channel = os.fdopen(os.dup(1), "wb")
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    logging.disable(logging.CRITICAL)
    for module in ("pypdf", "docx", "odfdo", "trafilatura", "lxml.html"):  # in the baseline, not in a file's budget
        try:
            __import__(module)
        except ImportError:
            pass
    _write_frame(channel, b'{"ready": true}')
    stdin = sys.stdin.fileno()
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    while True:
        try:
            request = json.loads(_read_frame(stdin, None))
            raw = _read_frame(stdin, None)
        except EOFError:  # the parent is gone
            return
        limit = _address_space() + int(request["memory"])
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        try:
            if limit > int(request["memory"]):
                resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
            text, pages, meta = _extract(request["suffix"], raw)
            reply = {"text": text, "pages": list(pages), "meta": meta}
        except MemoryError:
            reply = {"memory": True}
        except Exception as exc:  # noqa: BLE001 - reported, never a traceback
            if _out_of_memory(exc):
                reply = {"memory": True}
            else:
                reply = {"unusable": str(exc) if isinstance(exc, _Unusable) else f"illisible ({type(exc).__name__})"}
        finally:
            resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
        del raw
        _write_frame(channel, json.dumps(reply, ensure_ascii=False).encode("utf-8", "surrogatepass"))


def _pdf_text(raw: bytes) -> tuple[str, tuple[int, ...]]:
    """The text layer of a PDF (pypdf), page by page, with what print layout adds removed: running
    headers and footers (a first or last line found on most pages, page numbers aside) and words
    hyphenated at a line end. Pages are joined by a blank line; their start offsets are returned."""
    from pypdf import PdfReader

    try:
        reader = PdfReader(io.BytesIO(raw))
        pages = [page.extract_text() or "" for page in reader.pages]
    except MemoryError:
        raise  # over the memory budget: reported as such
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
    except MemoryError:
        raise  # over the memory budget: reported as such
    except Exception as exc:  # noqa: BLE001 - a parser fed any bytes may fail any way: the file is unreadable
        raise _Unusable(f"document Word illisible ({type(exc).__name__})") from exc
    return "\n\n".join(block for block in blocks if block.strip())


def _odt_text(raw: bytes) -> str:
    """An OpenDocument text (odfdo) as Markdown: its outline headings become sections, lists ``-``
    items, tables one line per row (the Markdown separator rows dropped)."""
    from odfdo import Document as OdfDocument

    try:
        markdown = OdfDocument(io.BytesIO(raw)).to_markdown()
    except MemoryError:
        raise  # over the memory budget: reported as such
    except Exception as exc:  # noqa: BLE001 - a parser fed any bytes may fail any way: the file is unreadable
        raise _Unusable(f"document OpenDocument illisible ({type(exc).__name__})") from exc
    lines = (line.strip() for line in markdown.splitlines())
    kept = (re.sub(r"^-\s+", "- ", line) for line in lines if not re.fullmatch(r"\|?[-:| ]+\|?", line) or not line)
    return re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip()


def _html_text(raw: bytes) -> tuple[str, dict]:
    """A web page's main content (trafilatura: navigation, cookie banners, footers and comments
    left out) as Markdown, headings as sections; its title and canonical address as metadata.
    What a reader never sees is left out first (``_drop_hidden``); the page is parsed without
    libxml2's 10 MB limit on one text node (a page on one line of 10 MB read as empty); Markdown's
    escapes and emphasis marks are taken out of the words (``_markdown_words``)."""
    import trafilatura
    from lxml import etree
    from lxml.html import HTMLParser, fromstring

    html = _decode(raw)
    if html is None:
        raise _Unusable("page HTML ni UTF-8 ni Windows-1252 : convertissez-la en UTF-8")
    try:
        from trafilatura.utils import repair_faulty_html

        html = repair_faulty_html(html, html[:50].lower())
    except ImportError:  # another trafilatura: its repairs are only a convenience
        pass
    parser = HTMLParser(collect_ids=False, default_doctype=False, encoding="utf-8", remove_comments=True,
                        remove_pis=True, huge_tree=True)
    try:
        tree = fromstring(html.lstrip("\ufeff").encode("utf-8", "surrogatepass"), parser=parser)
    except etree.ParserError:  # « Document is empty »
        return "", {}
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - a parser fed any bytes may fail any way: the file is unreadable
        raise _Unusable(f"page HTML illisible ({type(exc).__name__})") from exc
    try:
        _drop_hidden(tree)
        found = trafilatura.extract_metadata(tree, extensive=False)  # the title and address; its date is not read
        text = trafilatura.extract(tree, output_format="markdown", include_tables=True, include_formatting=True,
                                   include_links=False, include_images=False, include_comments=False) or ""
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - a parser fed any bytes may fail any way: the file is unreadable
        raise _Unusable(f"page HTML illisible ({type(exc).__name__})") from exc
    meta = {}
    if found is not None and found.title:
        meta["title"] = found.title
    if found is not None and found.url and re.match(r"https?://", found.url):
        meta["url"] = found.url
    return "\n".join(_markdown_words(line).rstrip() for line in text.splitlines()).strip(), meta


# Elements a browser never shows: their text is not the page's (a planted order hides there).
_HIDDEN_TAGS = frozenset({"script", "style", "noscript", "template", "iframe", "object", "embed", "svg", "canvas"})
_HIDDEN_STYLE = re.compile(r"(?:^|;)\s*(?:display\s*:\s*none|visibility\s*:\s*(?:hidden|collapse))\b", re.IGNORECASE)


def _drop_hidden(tree) -> None:
    """Remove from an lxml HTML tree what a reader never sees: ``<script>``, ``<style>``,
    ``<noscript>``, ``<template>`` (and embedded objects), elements with the ``hidden``
    attribute, ``aria-hidden="true"`` or an inline ``display: none`` / ``visibility: hidden``
    style. The text after each removed element is kept."""
    doomed = []
    for element in tree.iter():
        if not isinstance(element.tag, str):  # comments, processing instructions, entities
            continue
        tag = element.tag.rpartition("}")[2].lower()
        if (tag in _HIDDEN_TAGS or element.get("hidden") is not None
                or (element.get("aria-hidden") or "").strip().lower() == "true"
                or _HIDDEN_STYLE.search(element.get("style") or "")):
            doomed.append(element)
    for element in doomed:
        if element.getparent() is not None:
            element.drop_tree()
        else:  # the root itself: nothing of the page is shown
            element.clear()


# trafilatura's Markdown: every literal ``* _ ` ~ [ ] <`` of the page's words is escaped with a
# backslash (backslashes already before one doubled), so an unescaped ``*``, ``~~`` or ``<tag>`` is
# layout (emphasis, strikethrough, <u>, <sup>), and a code span keeps its content verbatim.
_MARKDOWN_INLINE = re.compile(
    r"(?P<code>(?P<ticks>`+)(?!`)(?P<body>.+?)(?<!`)(?P=ticks)(?!`))"
    r"|(?P<escape>\\+)(?P<char>[*_`~\[\]<])"
    r"|(?P<tag></?[A-Za-z][A-Za-z0-9]*\s*/?>)"
    r"|(?P<mark>\*+|~~)")
# A line that would start a heading, quote or list is escaped too: « \# », « \- », « 1\. ».
_MARKDOWN_BLOCK = re.compile(r"^( {0,3}(?:\d{1,9})?)\\(?=[#>+\-.)])")


def _markdown_words(line: str) -> str:
    """One line of trafilatura's Markdown with the page's words as they were: escapes undone,
    emphasis and inline tags taken out, code spans' backticks dropped. Headings (``#``), list
    markers and table bars are kept: they are the document's structure."""
    line = _MARKDOWN_BLOCK.sub(r"\1", line)

    def words(match: re.Match) -> str:
        if match.group("code") is not None:
            return match.group("body")
        if match.group("escape") is not None:
            run, char = len(match.group("escape")), match.group("char")
            return "\\" * (run // 2) + (char if run % 2 else "" if char in "*~" else char)
        return ""  # emphasis marks, inline tags

    return _MARKDOWN_INLINE.sub(words, line)


# Byte-order marks (the 32-bit ones first: UTF-32-LE's begins with UTF-16-LE's).
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def text_encoding(raw: bytes) -> str | None:
    """The encoding a UTF-16 or UTF-32 byte-order mark at the start of ``raw`` announces
    (Notepad's « Unicode »), else None."""
    return next((codec for bom, codec in _BOMS if raw.startswith(bom)), None)


def _decode(raw: bytes) -> str | None:
    """UTF-16 or UTF-32 when a byte-order mark says so (the mark dropped); else UTF-8 (a
    byte-order mark is text, kept for exact offsets), else Windows-1252, the usual encoding of
    French text files written on Windows; None when none of them reads it."""
    codec = text_encoding(raw)
    if codec is not None:
        try:
            return raw.decode(codec)
        except UnicodeDecodeError:
            return None
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
