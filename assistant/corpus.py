"""Reading the source documents (``.txt`` and ``.md``) and their metadata.

Metadata comes from ``manifest.toml`` in the corpus folder (one ``[files."name.txt"]`` table per
file) or from a front-matter block (``---`` / ``key: value`` lines / ``---``) at the top of the
file. Offsets everywhere are into the file's full text, front matter included, so that
``document.text[start:end]`` is always what a citation shows.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .errors import AssistantError

SUPPORTED_SUFFIXES = (".txt", ".md")
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

    def to_dict(self) -> dict:
        data = asdict(self)
        data.pop("text")
        return data


def _read_manifest(corpus_dir: Path) -> dict[str, dict]:
    path = corpus_dir / MANIFEST
    if not path.exists():
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8")).get("files", {})
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise AssistantError(f"Le manifeste {path} est invalide ({exc}) : corrigez-le.") from exc


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


def load_corpus(corpus_dir: str | Path) -> list[Document]:
    """Every supported file of the folder, sorted by name; clear errors for unusable input."""
    corpus_dir = Path(corpus_dir)
    if not corpus_dir.is_dir():
        raise AssistantError(f"Dossier du corpus introuvable : {corpus_dir}. Indiquez-le avec --corpus.")
    manifest = _read_manifest(corpus_dir)
    try:
        paths = sorted(p for p in corpus_dir.iterdir() if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES)
    except PermissionError as exc:
        raise AssistantError(f"Dossier du corpus illisible : {corpus_dir} (droits d'accès).") from exc
    if not paths:
        raise AssistantError(
            f"Le corpus {corpus_dir} ne contient aucun document (.txt ou .md) : ajoutez-en au moins un."
        )
    documents = []
    for path in paths:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise AssistantError(f"Impossible de lire {path} : {exc.strerror}.") from exc
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise AssistantError(
                f"{path} n'est pas encodé en UTF-8 (octet {exc.start}) : convertissez-le en UTF-8."
            ) from exc
        meta, body_start = _front_matter(text)
        meta = {**manifest.get(path.name, {}), **meta}
        if not text[body_start:].strip():
            raise AssistantError(f"{path} est vide : ajoutez du texte ou retirez le fichier du corpus.")
        documents.append(Document(
            id=str(meta.get("id") or path.stem),
            title=str(meta.get("title") or path.stem.replace("-", " ").replace("_", " ").strip()),
            source=path.name,
            text=text,
            body_start=body_start,
            sha256=hashlib.sha256(raw).hexdigest(),
            metadata={k: v for k, v in meta.items() if k not in {"id", "title"}},
        ))
    return documents
