"""``assistant eval``: run a dataset through the public API, write results.json and report.html,
and fail (exit 1) when a quality threshold is missed. ``assistant.cli`` only delegates here.

Exit codes: 0 all thresholds met; 1 a threshold missed (or the assistant failed to load);
2 unusable dataset or configuration.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_THRESHOLD, EXIT_BAD_INPUT = 0, 1, 2
# option -> (metric, direction): "min" means the metric must be >= the threshold.
THRESHOLDS = {
    "min_accuracy": ("answer_accuracy", "min"),
    "min_citation_precision": ("citation_precision", "min"),
    "min_abstention": ("abstention_rate", "min"),
    "max_false_abstention": ("false_abstention_rate", "max"),
}
DEV_SET = Path(__file__).resolve().parent / "datasets" / "dev.jsonl"

DESCRIPTION = """\
Évalue l'assistant sur un jeu de questions au format JSONL partagé (id, question, answerable,
must_include, evidence, reference_answer, history, lang), à travers l'API publique : chaque
question (historique compris) est posée, les métriques du format partagé sont calculées, puis
DIR/results.json et DIR/report.html (rapport autonome : métriques, graphiques, questions en échec
d'abord) sont écrits. La référence llama-index naïve est toujours évaluée à côté (--no-baseline
pour s'en passer)."""

EPILOG = """\
Configurations (--compare CONFIG [CONFIG ...]) : préréglages et paires clé=valeur séparés par des
virgules, appliqués dans l'ordre ; la première configuration est celle dont results.json donne
metrics/config/items et que les seuils contrôlent.
  extractive            notre défaut : moteur extractif, réglages chargés (recherche hybride)
  hybrid | dense | bm25 mode de recherche (hybrid : fusion RRF de dense et BM25)
  gated | rules | calibrated  choix de la phrase et abstention : les règles sous le filtre
                        ajusté (défaut), les règles seules, ou le modèle ajusté sur données par
                        `assistant calibrate`
  norerank              l'ordre de la recherche, sans le reclassement ajusté
  baseline              llama-index naïf : VectorStoreIndex, SentenceSplitter par défaut, même
                        modèle d'embeddings, dense top-2, réponse = 1er passage, jamais d'abstention
  mode=M k=N engine=E abstain_threshold=X fusion=rrf|weighted rrf_k=N dense_weight=X
  candidate_pool=N max_answer_sentences=N max_answer_chars=N rerank=true|false calibration=FICHIER
  answer_scorer=S name=ÉTIQUETTE
  (baseline accepte k=N, chunk_size=N, chunk_overlap=N, name=ÉTIQUETTE)
Exemples :
  assistant eval --dataset evals/datasets/dev.jsonl --min-accuracy 0.88
  assistant eval --dataset dev.jsonl --compare extractive dense bm25 baseline --out /tmp/compare
  assistant eval --dataset dev.jsonl --compare "mode=dense,k=3" "bm25,name=lexical"
Codes de sortie : 0 seuils atteints ; 1 un seuil manqué ; 2 jeu de données ou configuration invalide."""


def _unit_interval(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"nombre attendu, reçu « {text} »") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"un seuil est entre 0 et 1 (reçu {text})")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"entier attendu, reçu « {text} »") from None
    if value < 1:
        raise argparse.ArgumentTypeError("doit être au moins 1")
    return value


def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", required=True, metavar="FILE",
                        help=f"jeu de questions JSONL (le jeu de développement : {DEV_SET.relative_to(DEV_SET.parents[2])})")
    parser.add_argument("--engine", metavar="NAME", help="moteur de réponse (défaut : extractive)")
    parser.add_argument("--k", type=_positive_int, metavar="N", help="passages récupérés par question")
    parser.add_argument("--mode", choices=("hybrid", "dense", "bm25"), help="mode de recherche (défaut : hybrid)")
    parser.add_argument("--out", metavar="DIR", help="dossier des résultats (défaut : DATA_DIR/evals/<horodatage>)")
    parser.add_argument("--compare", nargs="+", metavar="CONFIG",
                        help="plusieurs configurations côte à côte (voir plus bas)")
    parser.add_argument("--no-baseline", action="store_true",
                        help="ne pas ajouter la référence llama-index naïve")
    parser.add_argument("--skip-invalid", action="store_true",
                        help="ignorer les lignes invalides du jeu (signalées) au lieu d'abandonner")
    parser.add_argument("--min-accuracy", type=_unit_interval, metavar="X", help="answer_accuracy minimale")
    parser.add_argument("--min-citation-precision", type=_unit_interval, metavar="X",
                        help="citation_precision minimale")
    parser.add_argument("--min-abstention", type=_unit_interval, metavar="X", help="abstention_rate minimal")
    parser.add_argument("--max-false-abstention", type=_unit_interval, metavar="X",
                        help="false_abstention_rate maximal")
    parser.add_argument("--no-progress", action="store_true", help="sans barre de progression")


def check_thresholds(metrics: dict[str, Any], thresholds: dict[str, float | None]) -> list[dict[str, Any]]:
    """One check per threshold given; a metric no item qualifies for (null) cannot pass."""
    checks = []
    for option, threshold in thresholds.items():
        if threshold is None:
            continue
        metric, direction = THRESHOLDS[option]
        value = metrics.get(metric)
        passed = value is not None and (value >= threshold if direction == "min" else value <= threshold)
        checks.append({"option": "--" + option.replace("_", "-"), "metric": metric, "direction": direction,
                       "threshold": threshold, "value": value, "passed": passed})
    return checks


def threshold_message(check: dict[str, Any], config_name: str) -> str:
    if check["value"] is None:
        return (f"Seuil manqué : {check['metric']} n'est pas mesurable sur ce jeu (aucune question concernée), "
                f"{check['option']} {check['threshold']:g} ne peut pas être vérifié (« {config_name} »).")
    sign = "<" if check["direction"] == "min" else ">"
    return (f"Seuil manqué : {check['metric']} = {check['value']:.4f} {sign} {check['threshold']:g} "
            f"({check['option']}, configuration « {config_name} »).")


def _tqdm_factory(enabled: bool):
    from tqdm import tqdm

    def factory(name: str, total: int):
        return lambda items: tqdm(items, desc=name, total=total, unit="question", file=sys.stderr,
                                  disable=not enabled, leave=True, dynamic_ncols=True)
    return factory


def run_eval(args: argparse.Namespace, settings: Any, assistant: Any = None) -> int:
    """The whole command; ``assistant`` can be given (tests, the web app) to skip loading."""
    from .compare import default_configs, ensure_baseline, parse_configs, run_configurations, dataset_info
    from .dataset import DatasetError, load_dataset
    from .report import summary_table, write_outputs

    try:
        items, problems = load_dataset(args.dataset, skip_invalid=args.skip_invalid)
    except DatasetError as exc:
        print(f"Erreur : jeu de données invalide : {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    for problem in problems:
        print(f"Attention : ligne ignorée : {problem}", file=sys.stderr)
    try:
        if args.compare:
            configs = parse_configs(args.compare)
            configs = configs if args.no_baseline else ensure_baseline(configs)
        else:
            configs = default_configs(with_baseline=not args.no_baseline)
    except ValueError as exc:
        print(f"Erreur : {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT

    if assistant is None:
        from assistant import Assistant

        assistant = Assistant.load(settings=settings)
    info = dataset_info(args.dataset, items, problems)
    thresholds = {option: getattr(args, option, None) for option in THRESHOLDS}
    info["thresholds"] = {k: v for k, v in thresholds.items() if v is not None}
    try:
        runs = run_configurations(assistant, items, configs, _tqdm_factory(not args.no_progress))
    except ValueError as exc:  # a variant the index cannot serve, an unknown engine...
        print(f"Erreur : {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    checks = check_thresholds(runs[0]["metrics"], thresholds)
    info["threshold_checks"] = checks

    out = Path(args.out) if args.out else Path(settings.data_dir) / "evals" / datetime.now().strftime("%Y%m%d-%H%M%S")
    try:
        results_path, report_path = write_outputs(out, runs, info)
    except OSError as exc:
        print(f"Erreur : impossible d'écrire les résultats dans {out} ({exc.strerror or exc}).", file=sys.stderr)
        return EXIT_BAD_INPUT

    print(summary_table(runs))
    print(f"\nRésultats : {results_path}\nRapport   : {report_path}")
    missed = [check for check in checks if not check["passed"]]
    for check in checks:
        if check["passed"]:
            print(f"Seuil atteint : {check['metric']} = {check['value']:.4f} ({check['option']} {check['threshold']:g})")
    for check in missed:
        print(threshold_message(check, runs[0]["name"]), file=sys.stderr)
    return EXIT_THRESHOLD if missed else EXIT_OK
