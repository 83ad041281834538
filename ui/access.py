"""Who may reach the server and what they may do: loopback only, unless users and passwords are
configured; the sign-in throttle, request size limits, the endpoints callable by name, the
administrators and the audit log of what they did."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import ipaddress
import json
import logging
import math
import os
import re
import sqlite3
import threading
import time
from datetime import datetime, timezone
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
    """ASGI middleware in front of Gradio's ``/login``: wrong passwords are counted per client
    address and user name together, per address (names tried one after the other) and per user
    name (one name tried from many addresses). After ``free_attempts`` failures on one of these
    counts, further attempts get HTTP 429 for a delay that doubles with each new failure
    (``base_delay`` seconds, at most ``max_delay``).

    An address from which a user already signed in is that user's own: only the count of that
    address and name together holds it back, so wrong passwords for « alice » typed elsewhere (or
    names tried by a neighbour behind the same address) never keep her out of her usual place.
    These pairs are remembered (hashed) in ``known_path`` across restarts. A success clears the
    counts it touches. Every failure and every refusal is logged (address, user name, delay)."""

    def __init__(self, app: Any, free_attempts: int = 5, base_delay: float = 2.0, max_delay: float = 900.0,
                 clock: Callable[[], float] = time.monotonic, known_path: str | Path | None = None,
                 max_entries: int = 10_000) -> None:
        self.app, self.free_attempts, self.base_delay, self.max_delay = app, free_attempts, base_delay, max_delay
        self.clock, self.max_entries = clock, max_entries
        self._failures: dict[tuple[str, ...], int] = {}
        self._locked_until: dict[tuple[str, ...], float] = {}
        self._lock = threading.Lock()
        self.known_path = Path(known_path) if known_path else None
        self._known: set[str] = self._read_known()

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope.get("type") != "http" or scope.get("method") != "POST" \
                or not scope.get("path", "").rstrip("/").endswith("/login"):
            await self.app(scope, receive, send)
            return
        body, more = b"", True
        while more:  # the form is read here (BodyLimit stops it at 8 KB), then replayed to Gradio
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > LOGIN_MAX_BYTES:  # even without BodyLimit in front
                await json_response(send, 413, {"detail": "Formulaire de connexion trop volumineux."}, [])
                return
        fields = parse_qs(body.decode("utf-8", "replace"))
        user = (fields.get("username") or [""])[0].strip().casefold()
        address = (scope.get("client") or ("?", 0))[0]
        wait = self._wait(address, user)
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
                self._record(address, user, message.get("status", 500))
            await send(message)

        await self.app(scope, replay, watch)

    @staticmethod
    def _keys(address: str, user: str) -> list[tuple[str, ...]]:
        return [("adresse+utilisateur", address, user), ("adresse", address), ("utilisateur", user)]

    def _pair(self, address: str, user: str) -> str:
        return hashlib.sha256(f"{address}\x00{user}".encode("utf-8", "replace")).hexdigest()

    def _wait(self, address: str, user: str) -> float:
        keys = self._keys(address, user)
        now = self.clock()
        with self._lock:
            if self._pair(address, user) in self._known:
                keys = keys[:1]  # her own address: only its own count holds her back
            return max((self._locked_until.get(key, 0.0) - now for key in keys), default=0.0)

    def _record(self, address: str, user: str, status: int) -> None:
        keys = self._keys(address, user)
        with self._lock:
            if status < 400:
                for key in keys:
                    self._failures.pop(key, None)
                    self._locked_until.pop(key, None)
                pair = self._pair(address, user)
                if pair not in self._known:
                    self._known.add(pair)
                    self._write_known()
                return
            if status != 400:  # 400 is Gradio's "Incorrect credentials"
                return
            self._prune()
            delays = []
            for key in keys:
                count = self._failures[key] = self._failures.get(key, 0) + 1
                if count >= self.free_attempts:
                    delay = min(self.max_delay, self.base_delay * 2 ** min(count - self.free_attempts, 32))
                    self._locked_until[key] = self.clock() + delay
                    delays.append(delay)
        log.warning("Échec de connexion : adresse %s, utilisateur %r%s.", address, user,
                    f", attente imposée {max(delays):.0f} s" if delays else "")

    def _prune(self) -> None:
        """Bounded memory: past ``max_entries`` counts, those not holding anyone back are dropped."""
        if len(self._failures) < self.max_entries:
            return
        now = self.clock()
        for key in [k for k in self._failures if self._locked_until.get(k, 0.0) <= now]:
            self._failures.pop(key, None)
            self._locked_until.pop(key, None)

    def _read_known(self) -> set[str]:
        if self.known_path is None or not self.known_path.is_file():
            return set()
        try:
            return set(json.loads(self.known_path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError) as exc:
            log.warning("Adresses de connexion connues illisibles (%s) : %s", self.known_path, exc)
            return set()

    def _write_known(self) -> None:
        if self.known_path is None:
            return
        try:
            self.known_path.parent.mkdir(parents=True, exist_ok=True)
            temporary = self.known_path.with_name(f".{self.known_path.name}-{os.getpid()}")
            temporary.write_text(json.dumps(sorted(self._known)), encoding="utf-8")
            temporary.chmod(0o600)
            os.replace(temporary, self.known_path)
        except OSError as exc:
            log.warning("Adresses de connexion connues non enregistrées (%s) : %s", self.known_path, exc)


async def json_response(send: Callable, status: int, payload: dict, headers: list[tuple[bytes, bytes]]) -> None:
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *headers]})
    await send({"type": "http.response.body", "body": body})


# Gradio's routes that run an event handler by name: /run/<name> and /api/<name> (straight to the
# handler, skipping the queue and its concurrency limits; the page itself posts its unqueued
# handlers to /run/predict with their index), /call/<name> and /call/v2/<name> (the queue; GET
# /call/<name>/<event id> reads the result).
_NAMED = re.compile(r"^/(?:gradio_api/)?(run|api|call)/(?:v2/)?([^/]*)")
_CANCEL = re.compile(r"^/(?:gradio_api/)?cancel/?$")
_UPLOAD = re.compile(r"^/(?:gradio_api/)?upload/?$")
_LOGIN = re.compile(r"^/(?:gradio_api/)?login/?$")
PUBLIC_ENDPOINTS = frozenset({"ask", "run_eval"})
LOGIN_MAX_BYTES = 8_000


def route_path(scope: dict) -> str:
    """The path the app routes on (without the root path a proxy may put in front)."""
    path, root = scope.get("path", ""), scope.get("root_path", "")
    return path[len(root):] if root and path.startswith(root) else path


class ApiGate:
    """ASGI middleware: only the documented endpoints are callable by name, uploads are for
    administrators, and cancelling needs the same sign-in as everything else.

    Gradio serves every event handler by name, even those marked private (the chat's ``respond``,
    ``on_load``, ``library_view``, ``upload``...), at ``/gradio_api/call/<name>``,
    ``/gradio_api/call/v2/<name>``, and at ``/gradio_api/run/<name>`` / ``/gradio_api/api/<name>``,
    which skip the queue. Only ``public`` names pass here, and only through the queue (``/call``).
    Of the direct forms only ``/gradio_api/run/predict`` (and ``/api/predict``) stays: the page
    posts its unqueued handlers there by index, and the app closes the direct routes to every
    queued handler (``api_open = False``), so nothing reaches ``respond``, ``upload`` or any
    handler that reads the library that way. The page runs the others through
    ``/gradio_api/queue/join``, by index (each handler that changes something checks its
    caller). With users configured,
    ``/gradio_api/cancel`` (which Gradio answers without credentials) needs a valid session
    cookie, and ``/gradio_api/upload`` an administrator's."""

    def __init__(self, app: Any, public: frozenset[str] = PUBLIC_ENDPOINTS, admins: Any = ()) -> None:
        self.app, self.public, self.admins = app, frozenset(public), frozenset(admins)

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        path = route_path(scope) if scope.get("type") == "http" else ""
        named = _NAMED.match(path)
        if named and not (named.group(2) in self.public if named.group(1) == "call" else named.group(2) == "predict"):
            detail = "Point d'accès inconnu."
            if named.group(2) in self.public:
                detail += f" Appelez /gradio_api/call/{named.group(2)} (par la file d'attente)."
            await json_response(send, 404, {"detail": detail}, [])
            return
        if _CANCEL.match(path) and not signed_in(scope):
            await json_response(send, 401, {"detail": "Non authentifié."}, [])
            return
        if _UPLOAD.match(path) and not scope_is_admin(scope, self.admins):
            await json_response(send, 403, {"detail": "Réservé aux administrateurs : l'envoi de fichiers est refusé."}, [])
            return
        await self.app(scope, receive, send)


class _TooLarge(Exception):
    pass


class BodyLimit:
    """ASGI middleware: a request body larger than its route's limit is refused with HTTP 413
    before it is read whole (nor parsed): at once when its ``Content-Length`` says so, else as
    soon as the bytes streamed in pass the limit (whatever the app behind made of the interrupted
    read, the client gets the 413). Limits: the sign-in form ``login`` bytes, an upload
    ``upload``, the named endpoints (``/ask``, ``/run_eval``: a question and its history) ``api``,
    anything else (the page's events, which carry the conversation) ``default``."""

    def __init__(self, app: Any, default: int = 4_000_000, api: int = 256_000, upload: int = 100_000_000,
                 login: int = LOGIN_MAX_BYTES, public: frozenset[str] = PUBLIC_ENDPOINTS) -> None:
        self.app, self.default, self.api, self.upload, self.login = app, default, api, upload, login
        self.public = frozenset(public)

    def limit_for(self, path: str) -> tuple[int, str]:
        if _LOGIN.match(path):
            return self.login, "Formulaire de connexion trop volumineux"
        if _UPLOAD.match(path):
            return self.upload, "Envoi trop volumineux"
        named = _NAMED.match(path)
        if named and named.group(2) in self.public:
            return self.api, "Requête trop volumineuse (question et historique)"
        return self.default, "Requête trop volumineuse"

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        limit, what = self.limit_for(route_path(scope))
        refusal = {"detail": f"{what} : {_size(limit)} au plus."}
        declared = next((value for name, value in scope.get("headers", []) if name == b"content-length"), None)
        if declared is not None and (not declared.strip().isdigit() or int(declared) > limit):
            log.warning("Requête refusée (%s octets annoncés, limite %s) : %s", declared.decode("latin-1")[:20],
                        limit, scope.get("path", ""))
            await json_response(send, 413, refusal, [])
            return
        received, over, started = 0, False, False

        async def counted() -> dict:
            nonlocal received, over
            if over:
                raise _TooLarge()
            message = await receive()
            if message.get("type") == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    over = True
                    raise _TooLarge()
            return message

        async def guarded(message: dict) -> None:
            nonlocal started
            if over and not started:
                return  # what the app made of the interrupted read: replaced by the 413 below
            started = started or message.get("type") == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, guarded)
        except _TooLarge:
            pass
        except Exception:
            if not over:
                raise
        if over and not started:
            log.warning("Requête refusée (plus de %s octets reçus) : %s", limit, scope.get("path", ""))
            await json_response(send, 413, refusal, [])


def _size(limit: int) -> str:
    """A limit in the words of the page: « 4 Mo », « 256 Ko », « 1,5 Mo »."""
    amount, unit = (limit / 1e6, "Mo") if limit >= 1_000_000 else (limit / 1e3, "Ko") if limit >= 1_000 else (limit, "octets")
    return f"{amount:.4g} {unit}".replace(".", ",")


def session_user(scope: dict) -> str | None:
    """The user name of the session cookie Gradio issued at sign-in, if any."""
    app = scope.get("app")
    if app is None:
        return None
    cookies = SimpleCookie()
    for name, value in scope.get("headers", []):
        if name == b"cookie":
            try:
                cookies.load(value.decode("latin-1"))
            except Exception:  # noqa: BLE001 - a malformed cookie header names nobody
                return None
    cookie_id = getattr(app, "cookie_id", "")
    tokens = getattr(app, "tokens", {}) or {}
    for kind in ("", "-unsecure"):
        morsel = cookies.get(f"access-token{kind}-{cookie_id}")
        if morsel is not None and morsel.value in tokens:
            return tokens[morsel.value]
    return None


def signed_in(scope: dict) -> bool:
    """No users configured, or a session cookie that Gradio issued at sign-in."""
    app = scope.get("app")
    if app is None or not getattr(app, "auth", None):
        return True
    return session_user(scope) is not None


def scope_is_admin(scope: dict, admins: Any) -> bool:
    """An administrator's request: a signed-in user named in ``admins``, or, without users
    configured, a client on this machine."""
    app = scope.get("app")
    if app is not None and getattr(app, "auth", None):
        return session_user(scope) in frozenset(admins)
    return is_loopback((scope.get("client") or ("", 0))[0])


def parse_names(spec: Any) -> list[str]:
    """Comma-separated names (the ``admins`` and ``trusted_proxies`` settings), or a list of them."""
    items = spec.split(",") if isinstance(spec, str) else list(spec or [])
    return [item.strip() for item in items if item and item.strip()]


def check_proxies(proxies: list[str]) -> list[str]:
    """The ``trusted_proxies`` setting: addresses or networks, each checked."""
    for proxy in proxies:
        try:
            ipaddress.ip_network(proxy, strict=False)
        except ValueError:
            raise AssistantError(f"trusted_proxies : « {proxy} » n'est ni une adresse ni un réseau IP.") from None
    return proxies


class Roles:
    """Who may manage the library (upload, remove, re-index), run evaluations and read the audit
    log: the signed-in users named in ``admins``; without sign-in (the server then listens on
    this machine only), the local user."""

    def __init__(self, admins: Any = ()) -> None:
        self.admins = frozenset(parse_names(admins))

    @staticmethod
    def who(request: Any) -> tuple[str, str]:
        """(user name or "", client address) of a Gradio request."""
        if request is None:
            return "", ""
        client = getattr(request, "client", None)
        return getattr(request, "username", None) or "", (getattr(client, "host", "") if client else "") or ""

    def is_admin(self, request: Any) -> bool:
        if request is None:
            return False
        user, host = self.who(request)
        return user in self.admins if user else is_loopback(host)


AUDIT_COLUMNS = ("date", "utilisateur", "adresse", "action", "document", "détail")


class AuditLog:
    """Who did what to the library and when: an append-only SQLite table (updates and deletions
    are refused by the database itself), read by administrators in the app and exported as CSV."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.executescript("""
                CREATE TABLE IF NOT EXISTS audit (
                    id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, user TEXT NOT NULL,
                    address TEXT NOT NULL, action TEXT NOT NULL, document TEXT NOT NULL, detail TEXT NOT NULL);
                CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
                    BEGIN SELECT RAISE(ABORT, 'journal en ajout seul'); END;
                CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
                    BEGIN SELECT RAISE(ABORT, 'journal en ajout seul'); END;
            """)

    @classmethod
    def in_dir(cls, data_dir: str | Path) -> "AuditLog":
        return cls(Path(data_dir) / "audit.sqlite3")

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30)
        db.execute("PRAGMA journal_mode=WAL")
        return db

    def record(self, user: str, address: str, action: str, document: str = "", detail: str = "") -> None:
        at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        with contextlib.closing(self._connect()) as db, db:
            db.execute("INSERT INTO audit (at, user, address, action, document, detail) VALUES (?, ?, ?, ?, ?, ?)",
                       (at, user or "local", address or "?", action, document or "", detail or ""))
        log.info("Journal : %s (%s) %s %r %s", user or "local", address, action, document, detail)

    def entries(self, limit: int | None = None) -> list[dict[str, str]]:
        """Most recent first."""
        query = "SELECT at, user, address, action, document, detail FROM audit ORDER BY id DESC"
        with contextlib.closing(self._connect()) as db:
            rows = db.execute(query + (" LIMIT ?" if limit else ""), (limit,) if limit else ()).fetchall()
        return [dict(zip(AUDIT_COLUMNS, row)) for row in rows]

    def write_csv(self, out: str | Path) -> Path:
        """Every entry, oldest first, as CSV (UTF-8 with BOM, for spreadsheets); a cell that a
        spreadsheet would take for a formula (=, +, -, @) is prefixed with a quote."""
        out = Path(out)
        with out.open("w", encoding="utf-8-sig", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(AUDIT_COLUMNS)
            for entry in reversed(self.entries()):
                writer.writerow([_inert_cell(entry[column]) for column in AUDIT_COLUMNS])
        return out


def _inert_cell(value: str) -> str:
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


_PROXY_PATCH = threading.Lock()


@contextlib.contextmanager
def forwarded_from(proxies: list[str]):
    """Within the block, a server Gradio starts believes ``X-Forwarded-For`` / ``-Proto`` only
    from ``proxies`` (uvicorn's default believes any client on 127.0.0.1, so a local client
    could choose the address the sign-in throttle counts). Empty: from nobody."""
    import gradio.http_server as http_server

    original = http_server.Server

    class Server(original):  # type: ignore[misc, valid-type]
        def __init__(self, config: Any, *args: Any, **kwargs: Any) -> None:
            config.proxy_headers = bool(proxies)
            config.forwarded_allow_ips = list(proxies)
            super().__init__(config, *args, **kwargs)

    with _PROXY_PATCH:
        http_server.Server = Server
        try:
            yield
        finally:
            http_server.Server = original


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
