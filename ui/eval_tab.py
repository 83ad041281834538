"""The "Évaluation" tab of the web app: run an eval dataset (uploaded, or the dev set) through the
same code as ``assistant eval`` and download ``results.json`` / ``report.html``.

Call ``build_eval_tab(assistant, settings)`` inside an open ``gr.Blocks()`` / ``gr.Tab(...)``
context. The run event is exposed as the API endpoint ``/run_eval``.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterable

import gradio as gr
import pandas as pd

from evals.cli import DEV_SET
from evals.compare import dataset_info, parse_configs, run_configurations
from evals.dataset import DatasetError, load_dataset
from evals.report import CATEGORY_LABELS, STATUS_LABELS, STATUS_ORDER, fmt, summary_rows, write_outputs

from .access import RunLimiter

CONFIG_CHOICES = [
    ("extractive (notre moteur, recherche hybride)", "extractive"),
    ("dense seule", "dense"),
    ("BM25 seul", "bm25"),
    ("référence llama-index naïve (répond avec le passage entier, sans s'abstenir)", "baseline"),
]
ITEM_HEADERS = ["résultat", "id", "catégorie", "question", "réponse", "passages cités", "attendu", "pourquoi",
                "rang preuve", "ms"]
SUMMARY_KEYS = ("answer_accuracy", "citation_precision", "citation_recall", "abstention_rate",
                "false_abstention_rate", "hit@1", "mrr")


def md_code(text: object) -> str:
    """Text (a file name, a line of a dataset) placed in Markdown as the characters it is: a code
    span, inside which no link, emphasis, HTML or formula is read, its fence longer than any run of
    backticks in the text."""
    text = str(text).replace("\r", " ").replace("\n", " ")
    fence = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    return f"{fence} {text} {fence}"


def _code_block(lines: list[str]) -> str:
    """Lines in a fenced block whose fence no line can close."""
    longest = max((len(run) for line in lines for run in re.findall(r"`+", line)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}\n" + "\n".join(lines) + f"\n{fence}"


def _servable(path: Path) -> Path:
    """Gradio serves files from the working directory or the temp directory only: copy the others."""
    resolved = path.resolve()
    for root in (Path.cwd().resolve(), Path(tempfile.gettempdir()).resolve()):
        if resolved == root or root in resolved.parents:
            return resolved
    copy_dir = Path(tempfile.mkdtemp(prefix="assistant-eval-"))
    return Path(shutil.copy2(resolved, copy_dir / resolved.name))


def _items_rows(run: dict[str, Any]) -> list[list[Any]]:
    ordered = sorted(enumerate(run["items"]), key=lambda pair: (STATUS_ORDER.get(pair[1]["status"], 3), pair[0]))
    rows = []
    for _, item in ordered:
        cited = "\n".join(f"[{c['number']}] " + " › ".join(x for x in (c.get("source"), c.get("section")) if x)
                          for c in item["citations"])
        expected = ("s'abstenir" if not item["answerable"] else
                    " ; ".join(" | ".join(group) for group in item["expected"]))
        rows.append([STATUS_LABELS.get(item["status"], item["status"]), item["id"],
                     CATEGORY_LABELS.get(item["category"], item["category"]), item["question"], item["answer"],
                     cited, expected, item.get("reason") or "", fmt(item["retrieval_rank"]), round(item["latency_ms"], 1)])
    return rows


def run_evaluation(assistant: Any, settings: Any, dataset: str | Path | None, use_dev_set: bool,
                   configs: list[str] | None, skip_invalid: bool = False,
                   progress_factory: Callable[[str, int], Callable[[Iterable], Iterable]] | None = None) -> dict[str, Any]:
    """The tab's work without Gradio: ``{"status", "metrics_rows", "metrics_headers", "items_rows",
    "results", "report"}``; a bad dataset gives a status listing its lines and no files."""
    empty = {"metrics_headers": ["métrique"], "metrics_rows": [], "items_rows": [], "results": None, "report": None}
    path = DEV_SET if use_dev_set or not dataset else Path(dataset)
    if not use_dev_set and not dataset:
        return {**empty, "status": "Choisissez un fichier JSONL ou cochez « jeu de développement »."}
    try:
        items, problems = load_dataset(path, skip_invalid=skip_invalid)
    except DatasetError as exc:  # the CLI's message names its flag and the server's path: not for this page
        problems = [p.replace(str(path), Path(path).name) for p in getattr(exc, "problems", None) or []]
        if not problems:
            return {**empty, "status": "**Jeu de données illisible** : " + md_code(str(exc).replace(str(path), Path(path).name))}
        return {**empty, "status": f"**Jeu de données « {md_code(Path(path).name)} » invalide** : {len(problems)} ligne(s) "
                                   "posent problème. Corrigez-les, ou cochez « Ignorer les lignes invalides » pour évaluer "
                                   "les autres.\n\n" + _code_block(problems)}
    try:
        run_configs = parse_configs(configs or ["extractive"])
    except ValueError as exc:
        return {**empty, "status": f"**Configuration invalide** : {md_code(exc)}"}
    runs = run_configurations(assistant, items, run_configs, progress_factory)
    info = dataset_info(path, items, problems)
    if use_dev_set or not dataset:
        info["dataset"] = str(DEV_SET)
    else:
        info["dataset_name"] = Path(dataset).name
    out = Path(settings.data_dir) / "evals" / datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    results_path, report_path = write_outputs(out, runs, info)
    rows = summary_rows(runs)
    primary = runs[0]
    figures = ", ".join(f"{key} {fmt(primary['metrics'][key])}" for key in SUMMARY_KEYS)
    failures = sum(1 for item in primary["items"] if item["status"] == "fail")
    status = (f"**{len(items)} questions** ({md_code(path.name) if not use_dev_set else 'jeu de développement'}) — "
              f"« {primary['name']} » : {figures} ; {failures} échec(s).")
    if problems:
        status += f"\n\n{len(problems)} ligne(s) invalide(s) ignorée(s) :\n\n" + "\n".join(f"- {md_code(p)}" for p in problems)
    status += "\n\n`results.json` et `report.html` sont à télécharger en bas de la page."
    return {"status": status, "metrics_headers": rows[0], "metrics_rows": rows[1:], "items_rows": _items_rows(primary),
            "results": str(_servable(results_path)), "report": str(_servable(report_path))}


def build_eval_tab(assistant: Any, settings: Any, limiter: RunLimiter | None = None,
                   guard: Callable[..., None] | None = None, record: Callable[..., None] | None = None) -> None:
    """Create the tab's components in the current Blocks context. ``guard(request, action,
    document)`` raises ``gr.Error`` for a caller who may not run an evaluation (the app's: not an
    administrator); ``record(request, action, document, detail)`` writes the audit log."""
    limiter = limiter or RunLimiter(settings.eval_interval_seconds)
    gr.Markdown(
        "Évaluez l'assistant sur un jeu de questions au format JSONL partagé (une question par ligne : "
        "`id`, `question`, `answerable`, `must_include`, `evidence`, `reference_answer`, `history`, `lang`). "
        "Les questions en échec sont listées en premier ; `report.html` contient aussi les graphiques.")
    with gr.Row():
        with gr.Column(scale=2):
            upload = gr.File(label="Jeu de questions (JSONL)", file_types=[".jsonl", ".json", ".txt"], type="filepath")
        with gr.Column(scale=3):
            use_dev = gr.Checkbox(label=f"Utiliser le jeu de développement ({DEV_SET.name})", value=False)
            configs = gr.CheckboxGroup(choices=CONFIG_CHOICES, value=["extractive", "baseline"],
                                       label="Configurations (la première cochée sert de référence du tableau)")
            skip_invalid = gr.Checkbox(label="Ignorer les lignes invalides (sinon : arrêt et liste des lignes)",
                                       value=False)
            run_button = gr.Button("Lancer l'évaluation", variant="primary")
    status = gr.Markdown()
    metrics = gr.Dataframe(label="Métriques", interactive=False, wrap=True)
    items = gr.Dataframe(label="Questions (échecs d'abord)", interactive=False, wrap=True,
                         headers=ITEM_HEADERS)
    with gr.Row():
        results_file = gr.File(label="results.json", interactive=False)
        report_file = gr.File(label="report.html", interactive=False)

    def run(dataset: str | None, dev: bool, chosen: list[str] | None, skip: bool, request: gr.Request,
            progress: gr.Progress = gr.Progress()) -> tuple:
        order = [value for _, value in CONFIG_CHOICES]
        chosen = sorted(chosen or ["extractive"], key=lambda v: order.index(v) if v in order else len(order))
        who = getattr(request, "username", None) or getattr(getattr(request, "client", None), "host", None) or "?"
        named = DEV_SET.name if dev or not dataset else Path(dataset).name
        if guard is not None:
            guard(request, "évaluation", named)
        progress(0, desc="Préparation…")
        try:  # an evaluation costs about half a minute of CPU: one at a time, one per person and period
            out = limiter.run(who, lambda: run_evaluation(
                assistant, settings, dataset, dev, chosen, skip,
                lambda name, total: (lambda it: progress.tqdm(it, desc=name, total=total, unit="question"))))
        except RuntimeError as exc:
            if record is not None:
                record(request, "évaluation refusée", named, str(exc))
            raise gr.Error(str(exc)) from None
        if record is not None:
            record(request, "évaluation", named, f"configurations : {', '.join(chosen)} ; "
                   + re.sub(r"[*`\\]", "", out["status"].split("\n")[0]))
        return (out["status"], pd.DataFrame(out["metrics_rows"], columns=out["metrics_headers"]),
                pd.DataFrame(out["items_rows"], columns=ITEM_HEADERS), out["results"], out["report"])

    run_button.click(run, [upload, use_dev, configs, skip_invalid],
                     [status, metrics, items, results_file, report_file], api_name="run_eval", concurrency_limit=1)
