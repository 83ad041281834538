"""The ``assistant`` command: a thin shell over ``Assistant`` (no retrieval or answer logic here).

Its subcommands are registrations (``commands``): the built-in ones below, and those of the
packages that ship with the assistant through the ``assistant.commands`` entry points
(``serve`` from ``ui``, ``eval`` and ``calibrate`` from ``evals``), so this package imports neither.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from .config import Settings, for_corpus, load_settings, prepare_environment
from .errors import AssistantError
from .registry import Registry

EXIT_USAGE = 2

# A command adds its subparser: ``add(subparsers, common)``, ``common(parser)`` adding --corpus and --index.
CommandAdder = Callable[[Any, Callable[[argparse.ArgumentParser], None]], None]
commands: Registry[CommandAdder] = Registry("commands", "Commande")


def check_query_args(args: argparse.Namespace) -> None:
    """``-k`` and ``--mode`` as the library checks them, before anything is loaded: a French
    ``ValueError`` (exit code 2) for ``-k 0``, ``-k -3`` or an unknown mode."""
    from .retrieval import MODES

    k = getattr(args, "k", None)
    if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
        raise ValueError(f"-k doit être un entier positif (reçu {k}).")
    mode = getattr(args, "mode", None)
    if mode is not None and mode not in MODES:
        raise ValueError(f"--mode doit être {', '.join(MODES[:-1])} ou {MODES[-1]} (reçu {mode!r}).")


def settings_from_args(args: argparse.Namespace) -> Settings:
    """The settings a command runs with: the configuration, then its flags (checked first)."""
    check_query_args(args)
    settings = load_settings(
        config_file=getattr(args, "config", None), index_dir=getattr(args, "index", None),
        engine=getattr(args, "engine", None), top_k=getattr(args, "k", None),
        retrieval_mode=getattr(args, "mode", None),
    )
    corpus = getattr(args, "corpus", None)
    return settings if corpus is None else for_corpus(settings, Path(corpus), getattr(args, "index", None))


def _load(args: argparse.Namespace):
    from .api import Assistant

    return Assistant.load(settings=settings_from_args(args))


# -- commands ----------------------------------------------------------------------------------
def cmd_index(args: argparse.Namespace) -> int:
    from .embeddings import Embedder
    from .index import update_index
    from .stores import location_for

    settings = settings_from_args(args)
    started = time.perf_counter()
    embedder = Embedder.from_settings(settings)
    index, summary = update_index(settings, embedder, force=args.force, show_progress=not args.json,
                                  log=(lambda message: None) if args.json else None)
    if args.json:
        print(json.dumps(summary, ensure_ascii=False))
        return 0
    manifest = index.manifest
    print(f"Index prêt dans {location_for(settings).describe()} : {manifest['documents']} document(s), "
          f"{manifest['chunks']} passages, {manifest['sentences']} phrases "
          f"(construit le {manifest['built_at']} en {manifest['build_seconds']} s ; "
          f"commande : {time.perf_counter() - started:.1f} s).")
    print(f"Documents : {len(summary['added'])} ajouté(s), {len(summary['updated'])} modifié(s), "
          f"{len(summary['removed'])} retiré(s), {len(summary['unchanged'])} inchangé(s) ; "
          f"{summary['chunks_embedded']} passage(s) calculé(s).")
    for failure in summary["failed"]:
        print(f"Laissé de côté : {failure['source']} — {failure['reason']}.")
    return 0


def _location(item: Any) -> str:
    return f"{item.title} › {item.section}" if item.section else item.title


def cmd_search(args: argparse.Namespace) -> int:
    assistant = _load(args)
    passages = assistant.search(args.question, k=args.k)
    if args.json:
        print(json.dumps([p.to_dict() for p in passages], ensure_ascii=False, indent=2))
        return 0
    for rank, p in enumerate(passages, start=1):
        print(f"{rank}. {_location(p)}  [{p.source} {p.start}-{p.end}]  "
              f"score={p.score:.4f} cosinus={p.dense_score:.3f} bm25={p.bm25_score:.2f}")
        print("   " + " ".join(p.text.split()))
    return 0


def _marked(citation: Any) -> str:
    """The passage with the cited sentences between »» and ««."""
    text, cursor, out = citation.text, citation.start, []
    for start, end in citation.highlights:
        out.append(text[cursor - citation.start:start - citation.start])
        out.append("»» " + text[start - citation.start:end - citation.start] + " ««")
        cursor = end
    out.append(text[cursor - citation.start:])
    return " ".join("".join(out).split())


def print_answer(answer: Any, as_json: bool = False) -> None:
    if as_json:
        print(json.dumps(answer.to_dict(), ensure_ascii=False, indent=2))
        return
    for notice in answer.notices:
        print(f"Attention : {notice}", file=sys.stderr)
    print(answer.text)
    if answer.citations:
        print("\nSources :")
        for c in answer.citations:
            page = f", p. {c.page}" if c.page else ""
            url = f", {c.url}" if c.url else ""
            print(f"[{c.number}] {_location(c)}  ({c.source}{page}, caractères {c.start}-{c.end}{url})")
            print("    " + _marked(c))


def answer_live(assistant: Any, question: str, history: list[dict[str, str]] | None = None,
                as_json: bool = False) -> Any:
    """Ask, showing a generating engine's draft live on stderr; the verified answer goes to stdout."""
    answer, drafted = None, False
    for piece in assistant.stream(question, history):
        if isinstance(piece, str):
            if assistant.settings.engine != "extractive" and not as_json:
                print(piece, end="", file=sys.stderr, flush=True)
                drafted = True
        else:
            answer = piece
    if drafted:
        print("\n", file=sys.stderr)
    print_answer(answer, as_json=as_json)
    return answer


def cmd_ask(args: argparse.Namespace) -> int:
    answer_live(_load(args), args.question, as_json=args.json)
    return 0


def cmd_chat(args: argparse.Namespace) -> int:
    assistant = _load(args)
    history: list[dict[str, str]] = []
    print("Posez vos questions sur le programme Mali (ligne vide ou Ctrl-D pour quitter, /nouveau pour recommencer).")
    while True:
        try:
            question = input("\nVous › ").strip()
        except (EOFError, KeyboardInterrupt):
            print()
            return 0
        except UnicodeDecodeError:
            print("Erreur : cette ligne n'est pas du texte UTF-8 ; retapez la question.", file=sys.stderr)
            continue
        if not question:
            return 0
        if question == "/nouveau":
            history.clear()
            print("Nouvelle conversation.")
            continue
        print()
        try:
            answer = answer_live(assistant, question, history)
        except ValueError as exc:  # bad input: the conversation goes on
            print(f"Erreur : {exc}", file=sys.stderr)
            continue
        history += [{"role": "user", "content": question}, {"role": "assistant", "content": answer.text}]


def cmd_feedback_export(args: argparse.Namespace) -> int:
    from .feedback import DB_NAME, FeedbackStore

    settings = settings_from_args(args).with_overrides(data_dir=args.data)
    path = Path(settings.data_dir) / DB_NAME
    if not path.exists():
        raise AssistantError(f"Aucun avis enregistré : {path} n'existe pas (les avis viennent de `assistant serve`).")
    store = FeedbackStore(path)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("w", encoding="utf-8") as handle:
            count = store.export_eval(handle, rating=args.rating)
        print(f"{count} avis exporté(s) vers {out} (format d'évaluation JSONL).", file=sys.stderr)
    else:
        store.export_eval(sys.stdout, rating=args.rating)
    return 0


# -- parsing -----------------------------------------------------------------------------------
def _common(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--corpus", help="dossier des documents (défaut : corpus/)")
    sub.add_argument("--index", help="dossier de l'index (défaut : index/ ; pour un autre --corpus, "
                     "data/indexes/<empreinte du dossier>)")


@commands.register("index")
def _add_index(commands_: Any, common: Callable) -> None:
    index = commands_.add_parser("index", help="construire l'index (si absent ou périmé)")
    common(index)
    index.add_argument("--force", action="store_true", help="reconstruire même s'il est à jour")
    index.add_argument("--json", action="store_true",
                       help="afficher le bilan en un objet JSON (documents, added, updated, removed, unchanged, "
                            "failed, chunks_embedded, seconds)")
    index.set_defaults(func=cmd_index)


@commands.register("search")
def _add_search(commands_: Any, common: Callable) -> None:
    search = commands_.add_parser("search", help="afficher les passages trouvés pour une question")
    common(search)
    search.add_argument("question")
    search.add_argument("-k", type=int, default=5, help="nombre de passages (défaut : 5)")
    search.add_argument("--mode", choices=("hybrid", "dense", "bm25"))
    search.add_argument("--json", action="store_true")
    search.set_defaults(func=cmd_search)


@commands.register("ask")
def _add_ask(commands_: Any, common: Callable) -> None:
    ask = commands_.add_parser("ask", help="répondre à une question, avec les sources")
    common(ask)
    ask.add_argument("question")
    ask.add_argument("--engine", help="moteur de réponse (défaut : extractive)")
    ask.add_argument("-k", type=int, help="passages récupérés")
    ask.add_argument("--json", action="store_true", help="afficher Answer.to_dict() en JSON")
    ask.set_defaults(func=cmd_ask)


@commands.register("chat")
def _add_chat(commands_: Any, common: Callable) -> None:
    chat = commands_.add_parser("chat", help="conversation interactive (garde l'historique)")
    common(chat)
    chat.add_argument("--engine")
    chat.set_defaults(func=cmd_chat)


@commands.register("feedback")
def _add_feedback(commands_: Any, common: Callable) -> None:
    feedback = commands_.add_parser("feedback", help="avis des utilisateurs (👍/👎) recueillis par l'interface web")
    feedback_commands = feedback.add_subparsers(dest="feedback_command", required=True)
    export = feedback_commands.add_parser("export", help="écrire les avis en JSONL au format d'évaluation")
    export.add_argument("--out", help="fichier de sortie (défaut : la sortie standard)")
    export.add_argument("--rating", choices=("up", "down"), help="seulement les 👍 (up) ou les 👎 (down)")
    export.add_argument("--data", help="dossier des données (défaut : data/)")
    export.set_defaults(func=cmd_feedback_export)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="assistant", description="Questions-réponses citées sur vos documents.")
    parser.add_argument("--config", help="fichier TOML de réglages (défaut : ./assistant.toml)")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in commands.names():
        commands.get(name)(subparsers, _common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    prepare_environment()
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except AssistantError as exc:
        print(f"Erreur : {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:  # bad input: empty question, malformed history, unknown engine...
        print(f"Erreur : {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
