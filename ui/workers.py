"""Answer workers: ``Assistant.ask`` spread over processes, so that one served app uses every core.

Answering is mostly Python: in one process the GIL lets it use about one core, whatever the number
of threads. ``assistant serve`` (extractive engine) therefore starts ``answer_workers`` processes
(``multiprocessing``, "spawn": nothing of the loaded model is forked). Each loads the published
index read-only (``build_on_load = false``), and answers ``ask(question, history, k)`` requests with
``Answer.to_dict()``; each request carries the version of the index the serving process answers
from, and a worker behind it loads the published one first (``Assistant.refresh``) or hands the
question back. The serving process keeps its own ``Assistant``
for everything else (discovery, search, updates, documents, evaluation), and answers in-process
while no worker is ready (at start, or while a dead worker is being replaced).

A request goes to an idle worker over its own pipe; a worker that dies is replaced in the
background and the request it held is answered in-process. The workers are stopped when the
server stops (``close``, registered with ``atexit``; ``assistant serve`` turns SIGTERM into an exit).
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing
import os
import queue
import threading
import time
from typing import Any

log = logging.getLogger("assistant")

_STOP = None  # the message that ends a worker


def default_workers(settings: Any) -> int:
    """How many answer workers ``settings`` asks for: ``answer_workers``, or when it is negative
    (the default) one per core for the extractive engine and none (in-process) for a language model."""
    wanted = int(getattr(settings, "answer_workers", -1))
    if wanted >= 0:
        return wanted
    if getattr(settings, "engine", "extractive") != "extractive":
        return 1
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _serve(connection: Any, settings: Any) -> None:
    """A worker's life: load the published index, say it is ready, answer until told to stop (or
    until the serving process is gone: its end of the pipe closes)."""
    import signal

    from assistant import Assistant
    from assistant.errors import AssistantError

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the server stops us
    try:
        assistant = Assistant.load(settings=settings.with_overrides(build_on_load=False))
        assistant.discover()  # the small-talk replies' questions, and the first-call costs, before any request
    except BaseException as exc:  # noqa: BLE001 - reported to the serving process, which answers itself
        connection.send(("failed", f"{type(exc).__name__}: {exc}"))
        return
    connection.send(("ready", os.getpid()))
    while True:
        try:
            request = connection.recv()
        except (EOFError, OSError, KeyboardInterrupt):
            return
        if request is _STOP:
            return
        question, history, k, version = request
        if version != assistant.index.version:  # the serving process published another index (an upload)
            assistant.refresh()
        if version != assistant.index.version:  # not readable yet: the serving process answers
            connection.send(("stale", assistant.index.version))
            continue
        try:
            reply = ("answer", assistant.ask(question, history, k=k).to_dict())
        except (ValueError, AssistantError) as exc:  # the user's mistake: raised again in the serving process
            reply = ("error", exc)
        except Exception as exc:  # noqa: BLE001 - a bug: answered in-process instead, with the traceback logged there
            reply = ("crash", f"{type(exc).__name__}: {exc}")
        try:
            connection.send(reply)
        except (OSError, ValueError):
            return


class _Worker:
    def __init__(self, process: Any, connection: Any) -> None:
        self.process, self.connection = process, connection


class AnswerWorkers:
    """``count`` answer processes over the index ``assistant`` serves; ``ask`` returns
    ``Answer.to_dict()`` as ``assistant.ask(...).to_dict()`` would."""

    def __init__(self, assistant: Any, count: int, settings: Any = None, start: bool = True) -> None:
        self.assistant = assistant
        self.settings = settings or assistant.settings
        self.count = count
        self._context = multiprocessing.get_context("spawn")
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._lock = threading.Lock()
        self._workers: set[_Worker] = set()  # ready ones, idle or busy
        self._starting = 0
        self._closed = False
        self.replaced = 0  # workers that died and were replaced
        self.answered = 0  # answers (and user errors) that came from a worker
        if start:
            for _ in range(count):
                self._start_one()
            atexit.register(self.close)

    # -- lifecycle -------------------------------------------------------------------------------
    def _start_one(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._starting += 1
        threading.Thread(target=self._launch, name="answer-worker-start", daemon=True).start()

    def _launch(self) -> None:
        worker = None
        try:
            ours, theirs = self._context.Pipe()
            process = self._context.Process(target=_serve, args=(theirs, self.settings), name="assistant-answers",
                                            daemon=True)
            process.start()
            theirs.close()
            worker = _Worker(process, ours)
            kind, detail = ours.recv()
            if kind != "ready":
                raise RuntimeError(detail)
        except Exception as exc:  # noqa: BLE001 - answered in-process meanwhile
            log.warning("Processus de réponse non démarré (%s) : les questions sont répondues par le serveur.", exc)
            if worker is not None:
                self._discard(worker)
            with self._lock:
                self._starting -= 1
            return
        with self._lock:
            self._starting -= 1
            if self._closed:
                self._discard(worker)
                return
            self._workers.add(worker)
        self._idle.put(worker)
        log.info("Processus de réponse prêt (pid %s).", worker.process.pid)

    def _discard(self, worker: _Worker) -> None:
        try:
            worker.connection.close()
        except OSError:
            pass
        if worker.process.is_alive():
            worker.process.kill()
        worker.process.join(timeout=5)

    def ready(self) -> int:
        """Workers ready (idle or answering)."""
        with self._lock:
            return len(self._workers)

    def wait_ready(self, timeout: float = 300) -> bool:
        """Until every worker is ready (True) or ``timeout`` seconds passed, or none is starting."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self._workers) >= self.count:
                    return True
                if not self._starting:
                    return False
            time.sleep(0.1)
        return False

    def pids(self) -> list[int]:
        with self._lock:
            return sorted(w.process.pid for w in self._workers)

    def close(self) -> None:
        """Stop every worker (idempotent)."""
        with self._lock:
            self._closed = True
            workers, self._workers = list(self._workers), set()
        for worker in workers:
            try:
                worker.connection.send(_STOP)
            except (OSError, ValueError):
                pass
        for worker in workers:
            worker.process.join(timeout=5)
            self._discard(worker)

    # -- answering ------------------------------------------------------------------------------
    def _take(self) -> _Worker | None:
        """An idle worker, waiting for one while some are ready; None when none is (answer in-process)."""
        while True:
            try:
                return self._idle.get(timeout=0.5 if self.ready() else 0)
            except queue.Empty:
                if not self.ready():
                    return None

    def ask(self, question: str, history: list[dict] | None = None, k: int | None = None) -> dict[str, Any]:
        """``Answer.to_dict()`` for the question, from an idle worker (or in-process when none is ready)."""
        worker = self._take() if not self._closed else None
        if worker is None:
            return self.assistant.ask(question, history, k=k).to_dict()
        try:  # the index the serving process answers from: a worker behind it catches up first
            worker.connection.send((question, history, k, self.assistant.index.version))
            kind, value = worker.connection.recv()
        except (EOFError, OSError, ValueError) as exc:  # the worker died: replace it, answer here
            self._lost(worker, exc)
            return self.assistant.ask(question, history, k=k).to_dict()
        self._idle.put(worker)
        if kind in ("answer", "error"):
            with self._lock:
                self.answered += 1
        if kind == "answer":
            return value
        if kind == "error":
            raise value
        if kind == "stale":
            return self.assistant.ask(question, history, k=k).to_dict()
        log.warning("Processus de réponse : %s ; la question est répondue par le serveur.", value)
        return self.assistant.ask(question, history, k=k).to_dict()

    def _lost(self, worker: _Worker, exc: BaseException) -> None:
        with self._lock:
            known = worker in self._workers
            self._workers.discard(worker)
        self._discard(worker)
        if known and not self._closed:
            log.warning("Processus de réponse %s arrêté (%s, code %s) : remplacé.", worker.process.pid,
                        type(exc).__name__, worker.process.exitcode)
            self.replaced += 1
            self._start_one()
