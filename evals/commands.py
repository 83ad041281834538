"""The ``assistant eval`` and ``assistant calibrate`` commands, registered with the assistant's CLI
through the ``assistant.commands`` entry point (the assistant package never imports ``evals``).
Both read datasets in the shared eval format, which is this package's."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Callable

EXIT_USAGE = 2


def register(commands: Any) -> None:
    commands.register("eval")(_add_eval)
    commands.register("calibrate")(_add_calibrate)


def _add_eval(subparsers: Any, common: Callable) -> None:
    from .cli import DESCRIPTION, EPILOG, add_eval_arguments

    evaluate = subparsers.add_parser("eval", help="évaluer sur un jeu de questions JSONL (métriques, rapport, seuils)",
                                     description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    common(evaluate)
    add_eval_arguments(evaluate)
    evaluate.set_defaults(func=cmd_eval)


def cmd_eval(args: argparse.Namespace) -> int:
    from assistant.cli import settings_from_args

    from .cli import run_eval

    return run_eval(args, settings_from_args(args))


def _add_calibrate(subparsers: Any, common: Callable) -> None:
    calibrate = subparsers.add_parser(
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


def cmd_calibrate(args: argparse.Namespace) -> int:
    """Parse the datasets, then ``assistant.fitting.calibrate`` fits and this writes the file."""
    from tqdm import tqdm

    from assistant.calibration import DEFAULT_CALIBRATION
    from assistant.cli import settings_from_args
    from assistant.fitting import CalibrationSet, calibrate

    from .dataset import DatasetError, load_dataset

    settings = settings_from_args(args)
    sets = []
    for spec in args.dataset:
        path_text, _, corpus_text = spec.partition("::")
        path = Path(path_text)
        beside = path.parent / "corpus"
        corpus = Path(corpus_text) if corpus_text else (beside if beside.is_dir() else Path(settings.corpus_dir))
        try:
            items, _ = load_dataset(path)
        except DatasetError as exc:
            print(f"Erreur : jeu de données invalide : {exc}", file=sys.stderr)
            return EXIT_USAGE
        sets.append(CalibrationSet(path, items, corpus))

    def progress(label: str, total: int):
        return lambda it: tqdm(it, desc=label, total=total, unit="question", file=sys.stderr)

    calibration = calibrate(settings, sets, args.target_false_abstention, args.gate_target, progress)
    out = calibration.save(args.out or DEFAULT_CALIBRATION)
    reranking = calibration.metadata["reranking"]
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
