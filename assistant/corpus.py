"""Reading the source documents (``.txt`` and ``.md``) and their metadata.

Metadata comes from ``manifest.toml`` in the corpus folder (one ``[files."name.txt"]`` table per
file) or from a front-matter block (``---`` / ``key: value`` lines / ``---``) at the top of the
file. Offsets everywhere are into the file's full text, front matter included, so that
``document.text[start:end]`` is always what a citation shows.
"""

from __future__ import annotations

import hashlib
import logging
import re
import tomllib
import unicodedata
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .errors import AssistantError

log = logging.getLogger("assistant")
SUPPORTED_SUFFIXES = (".txt", ".md")
# Text where more than this share of characters are control or unassigned code points is binary
# data that happens to decode, not a document.
MAX_UNPRINTABLE_SHARE = 0.1
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
    root = corpus_dir.resolve()
    outside = [p for p in paths if not p.resolve().is_relative_to(root)]
    for path in outside:  # nothing outside the corpus folder is ever read
        log.warning("%s ignoré : c'est un lien vers un fichier hors du dossier du corpus.", path)
    paths = [p for p in paths if p not in outside]
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
        if _unprintable_share(text) > MAX_UNPRINTABLE_SHARE:
            raise AssistantError(f"{path} n'est pas du texte (caractères de contrôle ou binaires) : "
                                 "retirez-le du corpus ou convertissez-le en texte.")
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


def _unprintable_share(text: str) -> float:
    """Share of characters that are control codes or unassigned (line breaks and tabs are text)."""
    if not text:
        return 0.0
    bad = sum(1 for c in text if c not in "\n\r\t" and unicodedata.category(c) in ("Cc", "Cn", "Co", "Cs"))
    return bad / len(text)
