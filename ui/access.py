"""Who may reach the server: loopback only, unless users and passwords are configured."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from assistant.errors import AssistantError

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def is_loopback(host: str) -> bool:
    host = host.strip().strip("[]")
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name that could resolve to anything: treat as exposed


def parse_auth(spec: str | None) -> list[tuple[str, str]]:
    """Users and passwords from the ``auth`` setting.

    Either ``"user:password,user2:password2"`` or the path of a file holding one ``user:password``
    per line (blank lines and ``#`` comments ignored; passwords may then contain commas).
    The password is everything after the first colon.
    """
    spec = (spec or "").strip()
    if not spec:
        return []
    path = Path(spec).expanduser()
    looks_like_path = ":" not in spec or spec.startswith(("/", "~", "."))
    if path.is_file():
        try:
            entries = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
        except (OSError, UnicodeDecodeError) as exc:
            raise AssistantError(f"Fichier d'authentification illisible : {path} ({exc}).") from exc
        entries = [e for e in entries if e and not e.startswith("#")]
        origin = str(path)
    elif looks_like_path:
        raise AssistantError(f"Fichier d'authentification introuvable : {spec}.")
    else:
        entries = [e.strip() for e in spec.split(",") if e.strip()]
        origin = "ASSISTANT_AUTH / auth"
    pairs = []
    for number, entry in enumerate(entries, start=1):
        user, sep, password = entry.partition(":")
        if not sep or not user.strip() or not password:
            raise AssistantError(f"Authentification mal formée ({origin}, entrée {number}) : "
                                 "attendu « utilisateur:mot_de_passe ».")
        pairs.append((user.strip(), password))
    if not pairs:
        raise AssistantError(f"Authentification vide ({origin}) : ajoutez au moins « utilisateur:mot_de_passe ».")
    return pairs


def check_exposure(host: str, auth: list[tuple[str, str]]) -> None:
    """Refuse to listen beyond this machine without authentication."""
    if not is_loopback(host) and not auth:
        raise AssistantError(
            f"Refus d'écouter sur {host} sans authentification : l'assistant serait ouvert à tout le réseau. "
            "Définissez des utilisateurs (ASSISTANT_AUTH=\"utilisateur:mot_de_passe\", ou auth = \"chemin/du/fichier\" "
            "dans assistant.toml) ou gardez --host 127.0.0.1."
        )
