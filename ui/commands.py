"""The ``assistant serve`` command, registered with the assistant's CLI through the
``assistant.commands`` entry point (the assistant package never imports ``ui``)."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from typing import Any, Callable


def register(commands: Any) -> None:
    commands.register("serve")(_add_serve)


def _add_serve(subparsers: Any, common: Callable) -> None:
    serve = subparsers.add_parser("serve", help="lancer l'interface web (Gradio) sur 127.0.0.1")
    common(serve)
    serve.add_argument("--host", help="adresse d'écoute (défaut : 127.0.0.1 ; toute autre exige une authentification)")
    serve.add_argument("--port", type=int, help="port (défaut : 7860)")
    serve.add_argument("--engine", help="moteur de réponse (défaut : extractive)")
    serve.add_argument("--data", help="dossier des données : avis des utilisateurs (défaut : data/)")
    serve.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    from assistant import Assistant, AssistantError
    from assistant.cli import settings_from_args

    from .access import check_exposure, check_proxies, parse_auth, parse_names

    settings = settings_from_args(args).with_overrides(host=args.host, port=args.port, data_dir=args.data)
    auth = parse_auth(settings.auth)
    check_exposure(settings.host, auth)  # before any loading: refuse fast
    check_proxies(parse_names(settings.trusted_proxies))
    # `kill` (SIGTERM, what service managers send) ends the server like Ctrl-C: exit handlers run,
    # among them the one that stops the embedded PostgreSQL server when this was its last user.
    signal.signal(signal.SIGTERM, lambda number, frame: sys.exit(0))
    started = time.perf_counter()
    assistant = Assistant.load(settings=settings, show_progress=True)
    from .app import build_app, launch

    from .workers import AnswerWorkers, default_workers

    workers = default_workers(settings)
    answers = AnswerWorkers(assistant, workers, settings) if workers > 1 else None
    demo = build_app(assistant, settings, answers=answers)
    shown = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    print(f"Assistant prêt en {time.perf_counter() - started:.1f} s : http://{shown}:{settings.port}/ "
          f"({'avec' if auth else 'sans'} authentification ; Ctrl-C pour arrêter).", flush=True)
    if answers is not None:
        print(f"Réponses calculées par {workers} processus (réglage answer_workers), démarrés en arrière-plan ; "
              "en attendant, par le serveur.", flush=True)
    try:
        launch(demo, settings.host, settings.port, auth=auth, corpus_dir=settings.corpus_dir,
               max_file_size=settings.max_document_bytes)
    except OSError as exc:
        raise AssistantError(f"Impossible d'écouter sur {settings.host}:{settings.port} ({exc}) : "
                             "le port est peut-être pris, choisissez-en un autre avec --port.") from exc
    finally:
        if answers is not None:
            answers.close()
    return 0
