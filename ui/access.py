"""Who may reach the server: loopback only, unless users and passwords are configured."""

from __future__ import annotations

import ipaddress
import json
import logging
import math
import re
import threading
import time
from pathlib import Path
from http.cookies import SimpleCookie
from typing import Any, Callable
from urllib.parse import parse_qs

from assistant.errors import AssistantError

log = logging.getLogger("assistant")
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


class LoginThrottle:
    """ASGI middleware in front of Gradio's ``/login``: after ``free_attempts`` failures from one
    client address or for one user name, further attempts get HTTP 429 for a delay that doubles with
    each new failure (``base_delay`` seconds, at most ``max_delay``). A success clears both counts.
    Every failure and every refusal is logged (address, user name, delay)."""

    def __init__(self, app: Any, free_attempts: int = 5, base_delay: float = 2.0, max_delay: float = 900.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.app, self.free_attempts, self.base_delay, self.max_delay = app, free_attempts, base_delay, max_delay
        self.clock = clock
        self._failures: dict[tuple[str, str], int] = {}
        self._locked_until: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope.get("type") != "http" or scope.get("method") != "POST" \
                or not scope.get("path", "").rstrip("/").endswith("/login"):
            await self.app(scope, receive, send)
            return
        body, more = b"", True
        while more:  # the form is read here, then replayed to Gradio
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        fields = parse_qs(body.decode("utf-8", "replace"))
        user = (fields.get("username") or [""])[0].strip().casefold()
        address = (scope.get("client") or ("?", 0))[0]
        keys = [("adresse", address), ("utilisateur", user)]
        wait = self._wait(keys)
        if wait > 0:
            log.warning("Connexion refusée (trop d'échecs) : adresse %s, utilisateur %r, encore %.0f s.", address, user, wait)
            await json_response(send, 429, {"detail": f"Trop de tentatives de connexion : réessayez dans {math.ceil(wait)} s."},
                        [(b"retry-after", str(math.ceil(wait)).encode())])
            return
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        async def watch(message: dict) -> None:
            if message.get("type") == "http.response.start":
                self._record(keys, message.get("status", 500), address, user)
            await send(message)

        await self.app(scope, replay, watch)

    def _wait(self, keys: list[tuple[str, str]]) -> float:
        now = self.clock()
        with self._lock:
            return max((self._locked_until.get(key, 0.0) - now for key in keys), default=0.0)

    def _record(self, keys: list[tuple[str, str]], status: int, address: str, user: str) -> None:
        with self._lock:
            if status < 400:
                for key in keys:
                    self._failures.pop(key, None)
                    self._locked_until.pop(key, None)
                return
            if status != 400:  # 400 is Gradio's "Incorrect credentials"
                return
            delays = []
            for key in keys:
                count = self._failures[key] = self._failures.get(key, 0) + 1
                if count >= self.free_attempts:
                    delay = min(self.max_delay, self.base_delay * 2 ** (count - self.free_attempts))
                    self._locked_until[key] = self.clock() + delay
                    delays.append(delay)
        log.warning("Échec de connexion : adresse %s, utilisateur %r%s.", address, user,
                    f", attente imposée {max(delays):.0f} s" if delays else "")


async def json_response(send: Callable, status: int, payload: dict, headers: list[tuple[bytes, bytes]]) -> None:
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *headers]})
    await send({"type": "http.response.body", "body": body})


class ApiGate:
    """ASGI middleware: only the documented endpoints are callable by name, and cancelling needs the
    same sign-in as everything else.

    Gradio serves every event handler at ``/gradio_api/call/<name>``, even those marked private
    (the chat's ``respond``, ``on_like``...): only ``public`` names pass here; the page itself runs
    its handlers through the queue, which is unaffected. With users configured, ``/gradio_api/cancel``
    (which Gradio answers without credentials) needs a valid session cookie."""

    def __init__(self, app: Any, public: frozenset[str] = frozenset({"ask", "run_eval"})) -> None:
        self.app, self.public = app, public

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        path = scope.get("path", "") if scope.get("type") == "http" else ""
        called = re.match(r"^(?:/gradio_api)?/call/([^/]+)", path)
        if called and called.group(1) not in self.public:
            await json_response(send, 404, {"detail": "Point d'accès inconnu."}, [])
            return
        if re.match(r"^(?:/gradio_api)?/cancel/?$", path) and not signed_in(scope):
            await json_response(send, 401, {"detail": "Non authentifié."}, [])
            return
        await self.app(scope, receive, send)


def signed_in(scope: dict) -> bool:
    """No users configured, or a session cookie that Gradio issued at sign-in."""
    app = scope.get("app")
    if app is None or not getattr(app, "auth", None):
        return True
    cookies = SimpleCookie()
    for name, value in scope.get("headers", []):
        if name == b"cookie":
            cookies.load(value.decode("latin-1"))
    cookie_id = getattr(app, "cookie_id", "")
    tokens = getattr(app, "tokens", {})
    return any(cookies.get(f"access-token{kind}-{cookie_id}") is not None
               and cookies[f"access-token{kind}-{cookie_id}"].value in tokens for kind in ("", "-unsecure"))


class RunLimiter:
    """One costly run at a time, and at most one per ``interval`` seconds for one person."""

    def __init__(self, interval: float = 120.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval, self.clock = interval, clock
        self._last: dict[str, float] = {}
        self._running = threading.Lock()

    def wait_for(self, who: str) -> float:
        """Seconds this person must still wait (0: may run now)."""
        return max(0.0, self._last.get(who, -math.inf) + self.interval - self.clock())

    def run(self, who: str, work: Callable[[], Any]) -> Any:
        if not self._running.acquire(blocking=False):
            raise RuntimeError("Une évaluation est déjà en cours : réessayez quand elle sera finie.")
        try:
            wait = self.wait_for(who)
            if wait > 0:
                raise RuntimeError(f"Une évaluation par {int(self.interval)} s au plus : réessayez dans {math.ceil(wait)} s.")
            self._last[who] = self.clock()
            return work()
        finally:
            self._running.release()
