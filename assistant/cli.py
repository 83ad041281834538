"""The ``assistant`` command: a thin shell over ``Assistant`` (no retrieval or answer logic here)."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from .config import Settings, load_settings
from .errors import AssistantError

EXIT_USAGE = 2


def _quiet_environment() -> None:
    # Offline by construction: never let a library try the Hub or send analytics.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _settings(args: argparse.Namespace) -> Settings:
    settings = load_settings(
        config_file=getattr(args, "config", None), index_dir=getattr(args, "index", None),
        engine=getattr(args, "engine", None), top_k=getattr(args, "k", None),
        retrieval_mode=getattr(args, "mode", None),
    )
    corpus = getattr(args, "corpus", None)
    return settings if corpus is None else for_corpus(settings, Path(corpus), getattr(args, "index", None))


def for_corpus(settings: Settings, corpus: Path, index_dir: str | Path | None = None) -> Settings:
    """Settings for a corpus other than the configured one: an index of its own (a folder under
    ``data_dir/indexes``, a schema of its own in PostgreSQL), never the configured library's."""
    if corpus.resolve() == Path(settings.corpus_dir).resolve():
        return settings.with_overrides(index_dir=index_dir)
    key = hashlib.sha256(str(corpus.resolve()).encode()).hexdigest()[:12]
    return settings.with_overrides(corpus_dir=corpus,
                                   index_dir=index_dir or Path(settings.data_dir) / "indexes" / key,
                                   database_schema=f"{settings.database_schema}_{key}")


def _load(args: argparse.Namespace):
    from .api import Assistant

    return Assistant.load(settings=_settings(args))


# -- commands ----------------------------------------------------------------------------------
def cmd_index(args: argparse.Namespace) -> int:
    from .embeddings import Embedder
    from .index import index_location, update_index

    settings = _settings(args)
    started = time.perf_counter()
    embedder = Embedder.from_settings(settings)
    index, summary = update_index(settings, embedder, force=args.force, show_progress=not args.json,
                                  log=(lambda message: None) if args.json else None)
    if args.json:
        print(json.dumps(summary, ensure_ascii=False))
        return 0
    manifest = index.manifest
    print(f"Index prêt dans {index_location(settings).describe()} : {manifest['documents']} document(s), "
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


def cmd_eval(args: argparse.Namespace) -> int:
    from evals.cli import run_eval

    return run_eval(args, _settings(args))


def cmd_feedback_export(args: argparse.Namespace) -> int:
    from .feedback import DB_NAME, FeedbackStore

    settings = _settings(args).with_overrides(data_dir=args.data)
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


def cmd_serve(args: argparse.Namespace) -> int:
    from ui.access import check_exposure, parse_auth

    settings = _settings(args).with_overrides(host=args.host, port=args.port, data_dir=args.data)
    auth = parse_auth(settings.auth)
    check_exposure(settings.host, auth)  # before any loading: refuse fast
    from .api import Assistant

    # `kill` (SIGTERM, what service managers send) ends the server like Ctrl-C: exit handlers run,
    # among them the one that stops the embedded PostgreSQL server when this was its last user.
    signal.signal(signal.SIGTERM, lambda number, frame: sys.exit(0))
    started = time.perf_counter()
    assistant = Assistant.load(settings=settings, show_progress=True)
    from ui.app import build_app, launch

    demo = build_app(assistant, settings)
    shown = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    print(f"Assistant prêt en {time.perf_counter() - started:.1f} s : http://{shown}:{settings.port}/ "
          f"({'avec' if auth else 'sans'} authentification ; Ctrl-C pour arrêter).", flush=True)
    try:
        launch(demo, settings.host, settings.port, auth=auth, corpus_dir=settings.corpus_dir,
               max_file_size=settings.max_document_bytes)
    except OSError as exc:
        raise AssistantError(f"Impossible d'écouter sur {settings.host}:{settings.port} ({exc}) : "
                             "le port est peut-être pris, choisissez-en un autre avec --port.") from exc
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    """Fit the answer scorer and its abstention threshold on eval datasets, each over its corpus."""
    from tqdm import tqdm

    from evals.dataset import DatasetError, load_dataset

    from .api import rules_answerer
    from .calibration import DEFAULT_CALIBRATION, collect_passages, collect_samples, fit_calibration, fit_reranker
    from .chat import FollowUpRewriter
    from .config import PROJECT_ROOT
    from .embeddings import Embedder, sha256_file
    from .evidence import EvidenceScorer
    from .index import ensure_index
    from .reranking import Reranker
    from .retrieval import Retriever

    settings = _settings(args)
    embedder = Embedder.from_settings(settings)
    sources, datasets = [], []
    for spec in args.dataset:
        path_text, _, corpus_text = spec.partition("::")
        path = Path(path_text)
        beside = path.parent / "corpus"
        corpus = Path(corpus_text) if corpus_text else (beside if beside.is_dir() else Path(settings.corpus_dir))
        local = for_corpus(settings, corpus)
        try:
            items, _ = load_dataset(path)
        except DatasetError as exc:
            print(f"Erreur : jeu de données invalide : {exc}", file=sys.stderr)
            return EXIT_USAGE
        index = ensure_index(local, embedder, show_progress=True)
        retriever = Retriever(index, embedder, mode=local.retrieval_mode, fusion=local.fusion, rrf_k=local.rrf_k,
                              dense_weight=local.dense_weight, candidate_pool=local.candidate_pool)
        name = os.path.relpath(path.resolve(), PROJECT_ROOT)
        corpus_name = os.path.relpath(corpus.resolve(), PROJECT_ROOT)
        sources.append((name, path, items, local, index, retriever, EvidenceScorer(index, embedder, None)))
        datasets.append({"name": name, "sha256": sha256_file(path), "items": len(items),
                         "answerable": sum(1 for i in items if i.answerable),
                         "corpus": corpus_name,
                         "documents": index.manifest["documents"]})

    def progress(path: Path, items: list, step: str):
        return lambda it: tqdm(it, desc=f"{path.name} ({step})", total=len(items), unit="question", file=sys.stderr)

    # First the passage reranker, on the pools as retrieval orders them; then the answer scorer and the
    # gate, on the pools as the reranker orders them (as they will meet them).
    passage_samples = []
    for name, path, items, local, _, retriever, scorer in sources:
        passage_samples += collect_passages(name, items, retriever, FollowUpRewriter(), scorer, local.candidate_pool,
                                            progress(path, items, "passages"))
    reranker_model, reranking = fit_reranker(passage_samples)
    samples = []
    for name, path, items, local, index, retriever, scorer in sources:
        samples += collect_samples(name, items, retriever, FollowUpRewriter(), scorer, local.candidate_pool,
                                   progress(path, items, "phrases"),
                                   rules=rules_answerer(local.with_overrides(abstain_threshold=0.0), index, embedder),
                                   top_k=local.top_k, reranker=Reranker(scorer, reranker_model))
    calibration = fit_calibration(samples, args.target_false_abstention, metadata={
        "datasets": datasets, "candidate_pool": settings.candidate_pool, "embedding_model": settings.embedding_model,
        "embedding_backend": settings.embedding_backend, "chunk_target_tokens": settings.chunk_target_tokens,
        "reranking": reranking,
        "weighting": "a dataset weighs as the square root of its number of questions"}, gate_target=args.gate_target,
        reranker=reranker_model)
    out = calibration.save(args.out or DEFAULT_CALIBRATION)
    print(f"Calibration écrite dans {out} : seuil d'abstention {calibration.threshold:.3f} "
          f"(fausses abstentions visées <= {args.target_false_abstention:g}, toutes questions confondues).")
    print(f"Seuil des règles : {calibration.rules_threshold:.3f} ; seuil du filtre « gated » : "
          f"{calibration.gate_threshold:.2f} (ensemble, au plus "
          f"{calibration.metadata['gate']['target_added_false_abstention']:g} de fausses abstentions ajoutées "
          "à celles des règles sans seuil, sur chaque jeu).")
    print("Reclassement des passages, hit@1 hors échantillon (validation croisée par document) :")
    for name, numbers in reranking["out_of_fold"].items():
        print(f"  {name}: recherche {numbers['hit@1_retrieval']} -> reclassé {numbers['hit@1_reranked']} "
              f"(preuve dans le lot : {numbers['hit@pool']})")
    print("Hors échantillon (validation croisée par document) :")
    for name, numbers in calibration.metadata["out_of_fold_at_threshold"].items():
        print(f"  {name}: " + ", ".join(f"{k} {v}" for k, v in numbers.items()))
    return 0


# -- parsing -----------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="assistant", description="Questions-réponses citées sur le programme Mali.")
    parser.add_argument("--config", help="fichier TOML de réglages (défaut : ./assistant.toml)")
    commands = parser.add_subparsers(dest="command", required=True)

    def common(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--corpus", help="dossier des documents (défaut : corpus/)")
        sub.add_argument("--index", help="dossier de l'index (défaut : index/ ; pour un autre --corpus, "
                         "data/indexes/<empreinte du dossier>)")

    index = commands.add_parser("index", help="construire l'index (si absent ou périmé)")
    common(index)
    index.add_argument("--force", action="store_true", help="reconstruire même s'il est à jour")
    index.add_argument("--json", action="store_true",
                       help="afficher le bilan en un objet JSON (documents, added, updated, removed, unchanged, "
                            "failed, chunks_embedded, seconds)")
    index.set_defaults(func=cmd_index)

    search = commands.add_parser("search", help="afficher les passages trouvés pour une question")
    common(search)
    search.add_argument("question")
    search.add_argument("-k", type=int, default=5, help="nombre de passages (défaut : 5)")
    search.add_argument("--mode", choices=("hybrid", "dense", "bm25"))
    search.add_argument("--json", action="store_true")
    search.set_defaults(func=cmd_search)

    ask = commands.add_parser("ask", help="répondre à une question, avec les sources")
    common(ask)
    ask.add_argument("question")
    ask.add_argument("--engine", help="moteur de réponse (défaut : extractive)")
    ask.add_argument("-k", type=int, help="passages récupérés")
    ask.add_argument("--json", action="store_true", help="afficher Answer.to_dict() en JSON")
    ask.set_defaults(func=cmd_ask)

    chat = commands.add_parser("chat", help="conversation interactive (garde l'historique)")
    common(chat)
    chat.add_argument("--engine")
    chat.set_defaults(func=cmd_chat)

    from evals.cli import DESCRIPTION as EVAL_DESCRIPTION, EPILOG as EVAL_EPILOG, add_eval_arguments

    evaluate = commands.add_parser("eval", help="évaluer sur un jeu de questions JSONL (métriques, rapport, seuils)",
                                   description=EVAL_DESCRIPTION, epilog=EVAL_EPILOG,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    common(evaluate)
    add_eval_arguments(evaluate)
    evaluate.set_defaults(func=cmd_eval)

    calibrate = commands.add_parser(
        "calibrate", help="ajuster le classement des réponses et le seuil d'abstention sur des jeux de questions",
        description="Ajuste le modèle qui choisit la phrase-réponse et décide de l'abstention, sur des jeux au "
                    "format d'évaluation, chacun sur son corpus ; écrit un fichier JSON (défaut : la calibration "
                    "livrée, assistant/calibration/default.json). Déterministe.")
    calibrate.add_argument("--dataset", action="append", required=True, metavar="FILE[::CORPUS]",
                           help="jeu JSONL ; son corpus est CORPUS, sinon le dossier corpus/ à côté du fichier, "
                                "sinon le corpus configuré (répétable)")
    calibrate.add_argument("--target-false-abstention", type=float, default=0.06, metavar="X",
                           help="fausses abstentions tolérées sur chaque jeu, hors échantillon (défaut : 0.06)")
    calibrate.add_argument("--gate-target", type=float, default=0.04, metavar="X",
                           help="fausses abstentions que le seuil des règles et le filtre « gated » peuvent "
                                "ajouter ensemble à celles des règles sans seuil, sur chaque jeu (défaut : 0.04)")
    calibrate.add_argument("--out", help="fichier de calibration à écrire")
    common(calibrate)
    calibrate.set_defaults(func=cmd_calibrate)

    feedback = commands.add_parser("feedback", help="avis des utilisateurs (👍/👎) recueillis par l'interface web")
    feedback_commands = feedback.add_subparsers(dest="feedback_command", required=True)
    export = feedback_commands.add_parser("export", help="écrire les avis en JSONL au format d'évaluation")
    export.add_argument("--out", help="fichier de sortie (défaut : la sortie standard)")
    export.add_argument("--rating", choices=("up", "down"), help="seulement les 👍 (up) ou les 👎 (down)")
    export.add_argument("--data", help="dossier des données (défaut : data/)")
    export.set_defaults(func=cmd_feedback_export)

    serve = commands.add_parser("serve", help="lancer l'interface web (Gradio) sur 127.0.0.1")
    common(serve)
    serve.add_argument("--host", help="adresse d'écoute (défaut : 127.0.0.1 ; toute autre exige une authentification)")
    serve.add_argument("--port", type=int, help="port (défaut : 7860)")
    serve.add_argument("--engine", help="moteur de réponse (défaut : extractive)")
    serve.add_argument("--data", help="dossier des données : avis des utilisateurs (défaut : data/)")
    serve.set_defaults(func=cmd_serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    _quiet_environment()
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
