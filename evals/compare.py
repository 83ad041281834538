"""Configurations to evaluate side by side, and running them on one dataset.

A CONFIG is a comma-separated list of named presets and ``key=value`` pairs, applied in order:

    extractive            our default: the extractive engine on the loaded settings (hybrid retrieval)
    hybrid | dense | bm25 the retrieval mode (dense: FAISS cosine; bm25: French BM25; hybrid: RRF of both);
                          dense and bm25 show that retriever's own order (no reranking)
    gated | rules | calibrated  the answer scorer: the rules with the fitted abstention gate (default),
                          the hand-set rules alone, or the model fitted by `assistant calibrate`
    norerank              the retrieval order, without the fitted passage reranker
    baseline              the plain llama-index pipeline (VectorStoreIndex, default SentenceSplitter,
                          same embedding model, dense top-2, answer = top passage, never abstains)
    mode=M  k=N  engine=E  abstain_threshold=X  fusion=rrf|weighted  rrf_k=N  dense_weight=X  rerank=true|false
    candidate_pool=N  max_answer_sentences=N  max_answer_chars=N  calibration=FILE  name=LABEL
    (baseline accepts k=N, chunk_size=N, chunk_overlap=N and name=LABEL)

Examples: ``extractive``, ``dense``, ``mode=dense,k=3``, ``bm25,abstain_threshold=0.45,name=bm25-strict``,
``baseline,chunk_size=256``.

Every configuration reuses the loaded model and index (``Assistant.variant``); only the baseline
builds its own small in-memory index.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from .dataset import EvalItem
from .metrics import category_accuracy, compute_metrics, question_word_accuracy, risk_coverage
from .runner import run_item

PRESETS: dict[str, dict[str, Any]] = {
    "extractive": {"engine": "extractive"},
    "hybrid": {"retrieval_mode": "hybrid"},
    "dense": {"retrieval_mode": "dense", "rerank": False},
    "bm25": {"retrieval_mode": "bm25", "rerank": False},
    "norerank": {"rerank": False},
    "baseline": {},
    "calibrated": {"answer_scorer": "calibrated"},
    "rules": {"answer_scorer": "rules"},
    "gated": {"answer_scorer": "gated"},
    "reader": {"answer_scorer": "reader"},
}
ALIASES = {"mode": "retrieval_mode", "k": "top_k", "threshold": "abstain_threshold"}
QUERY_SETTINGS = ("engine", "retrieval_mode", "top_k", "fusion", "rrf_k", "dense_weight", "candidate_pool",
                  "abstain_threshold", "max_answer_sentences", "max_answer_chars", "calibration", "answer_scorer",
                  "rerank")
BASELINE_SETTINGS = ("top_k", "chunk_size", "chunk_overlap")
INT_SETTINGS = {"top_k", "rrf_k", "candidate_pool", "max_answer_sentences", "max_answer_chars", "chunk_size",
                "chunk_overlap"}


@dataclass(frozen=True)
class RunConfig:
    name: str
    baseline: bool = False
    overrides: dict = field(default_factory=dict)


def parse_config(spec: str) -> RunConfig:
    """``"dense,k=3"`` -> RunConfig(name="dense,k=3", overrides={"retrieval_mode": "dense", "top_k": 3})."""
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError("configuration vide : donnez un préréglage (extractive, hybrid, dense, bm25, baseline) "
                         "ou des paires clé=valeur.")
    name, baseline, overrides = spec.strip(), False, {}
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        if "=" not in part:
            if part not in PRESETS:
                raise ValueError(f"configuration « {spec} » : préréglage inconnu « {part} » "
                                 f"(connus : {', '.join(PRESETS)}).")
            baseline = baseline or part == "baseline"
            overrides.update(PRESETS[part])
            continue
        key, value = (s.strip() for s in part.split("=", 1))
        key = ALIASES.get(key, key)
        if key == "name":
            if not value:
                raise ValueError(f"configuration « {spec} » : name= est vide.")
            name = value
            continue
        if not value:
            raise ValueError(f"configuration « {spec} » : valeur manquante pour {key}.")
        if key in INT_SETTINGS:
            try:
                value = int(value)
            except ValueError:
                raise ValueError(f"configuration « {spec} » : {key} doit être un entier (reçu « {value} »).") from None
            if value < (0 if key == "chunk_overlap" else 1):
                raise ValueError(f"configuration « {spec} » : {key} doit être positif.")
        overrides[key] = value
    allowed = BASELINE_SETTINGS if baseline else QUERY_SETTINGS
    unknown = sorted(set(overrides) - set(allowed))
    if unknown:
        what = "la référence llama-index (baseline)" if baseline else "une variante"
        raise ValueError(f"configuration « {spec} » : réglage(s) {', '.join(unknown)} impossible(s) pour {what} "
                         f"(possibles : {', '.join(allowed)}, name).")
    return RunConfig(name=name, baseline=baseline, overrides=overrides)


def parse_configs(specs: Iterable[str]) -> list[RunConfig]:
    configs = [parse_config(s) for s in specs]
    seen: set[str] = set()
    for config in configs:
        if config.name in seen:
            raise ValueError(f"configuration « {config.name} » donnée deux fois (utilisez name=... pour les distinguer).")
        seen.add(config.name)
    return configs


def default_configs(with_baseline: bool = True) -> list[RunConfig]:
    """Without --compare: the loaded settings as they are, against the baseline."""
    configs = [RunConfig(name="extractive")]
    if with_baseline:
        configs.append(RunConfig(name="baseline", baseline=True))
    return configs


def ensure_baseline(configs: list[RunConfig]) -> list[RunConfig]:
    """Our numbers are always shown against the plain llama-index baseline."""
    if any(c.baseline for c in configs):
        return configs
    name = "baseline" if all(c.name != "baseline" for c in configs) else "llama-index-baseline"
    return [*configs, RunConfig(name=name, baseline=True)]


def assistant_config(assistant: Any) -> dict[str, Any]:
    s = assistant.settings
    manifest = getattr(getattr(assistant, "index", None), "manifest", None) or {}
    described = assistant.describe()
    selector = described.get("selector", {})
    return {"engine": s.engine, "retrieval_mode": s.retrieval_mode, "top_k": s.top_k, "fusion": s.fusion,
            "abstain_threshold": selector.get("abstain_threshold", s.abstain_threshold),
            "max_answer_sentences": s.max_answer_sentences, "max_answer_chars": s.max_answer_chars,
            "candidate_pool": s.candidate_pool, "answer_scorer": s.answer_scorer, "selector": selector,
            "calibration": described.get("calibration"),
            "embedding_model": s.embedding_model, "chunk_target_tokens": s.chunk_target_tokens,
            "corpus_dir": str(s.corpus_dir), "index_dir": str(s.index_dir),
            "index_built_at": manifest.get("built_at"), "index_chunks": manifest.get("chunks")}


def build_runner(assistant: Any, config: RunConfig) -> tuple[Any, dict[str, Any]]:
    """The object to ``ask`` and the configuration it stands for (no model is loaded again)."""
    if config.baseline:
        from .baseline import LlamaIndexBaseline

        runner = LlamaIndexBaseline(assistant, top_k=config.overrides.get("top_k", 2),
                                    chunk_size=config.overrides.get("chunk_size"),
                                    chunk_overlap=config.overrides.get("chunk_overlap"))
        return runner, {"name": config.name, "spec": "baseline", **runner.config()}
    variant = assistant.variant(**config.overrides) if config.overrides else assistant
    return variant, {"name": config.name, **assistant_config(variant)}


def _reset_query_cache(runner: Any) -> None:
    """Latency fairness: the embedder caches query vectors, so a configuration run after another
    one on the same questions would skip the query embedding and look faster than a user would see
    it. Every configuration starts with an empty cache (when the embedder has one)."""
    cache = getattr(getattr(runner, "embedder", None), "_query_cache", None)
    if isinstance(cache, dict):
        cache.clear()


SHORT_ANSWER_CHARS = 450


def diagnostics(items: list[EvalItem], results: list[dict[str, Any]]) -> dict[str, Any]:
    """Numbers outside the shared metrics that keep a comparison honest (a long answer contains
    more facts by chance: answer length is shown next to accuracy; how right the surest answers
    are: coverage and precision of sure answers, AURC)."""
    answered = [r for r in results if not r["abstained"] and not r.get("error")]
    answer_chars = [len(r["answer"]) for r in answered]
    cited_chars = [sum(len(c["text"]) for c in r["citations"]) for r in answered]
    answerable = [r for i, r in zip(items, results) if i.answerable]
    short = [bool(r["correct"]) and len(r["answer"]) <= SHORT_ANSWER_CHARS for r in answerable]
    return {
        "answer_chars_median": statistics.median(answer_chars) if answer_chars else None,
        "cited_chars_median": statistics.median(cited_chars) if cited_chars else None,
        "correct_and_short": round(sum(short) / len(short), 4) if short else None,
        **risk_coverage(items, results),
        "errors": sum(1 for r in results if r.get("error")),
        "failures": sum(1 for r in results if not r["correct"]),
    }


def run_configuration(runner: Any, config: dict[str, Any], items: list[EvalItem],
                      progress: Callable[[Iterable], Iterable] = lambda it: it,
                      warmup: bool = True) -> dict[str, Any]:
    """One configuration on every item: ``{name, config, metrics, categories, diagnostics, items}``."""
    if warmup and items:
        try:  # first calls pay one-off costs (thread pools, lazy imports): keep them out of the latency
            runner.ask(items[0].question, history=[dict(t) for t in items[0].history])
        except Exception:  # the real run reports the error on the item
            pass
    _reset_query_cache(runner)
    results = [run_item(runner, item) for item in progress(items)]
    return {"name": config["name"], "config": config, "metrics": compute_metrics(items, results),
            "categories": category_accuracy(items, results), "question_words": question_word_accuracy(items, results),
            "diagnostics": diagnostics(items, results),
            "items": results}


def run_configurations(assistant: Any, items: list[EvalItem], configs: list[RunConfig],
                       progress_factory: Callable[[str, int], Callable[[Iterable], Iterable]] | None = None,
                       warmup: bool = True) -> list[dict[str, Any]]:
    """Every configuration on the same items, in the order given (all runners are built first, so
    a bad configuration fails before any long run)."""
    runners = [build_runner(assistant, config) for config in configs]
    runs = []
    for runner, config in runners:
        progress = progress_factory(config["name"], len(items)) if progress_factory else (lambda it: it)
        runs.append(run_configuration(runner, config, items, progress, warmup))
    return runs


def dataset_info(path: Any, items: list[EvalItem], problems: list[str]) -> dict[str, Any]:
    """What a results file needs to say about its dataset and run (for reproducibility)."""
    import hashlib
    import subprocess
    from datetime import datetime, timezone
    from pathlib import Path

    path = Path(path)
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        digest = None
    commit = None
    try:
        root = Path(__file__).resolve().parent.parent
        done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                              timeout=5)
        commit = done.stdout.strip() or None if done.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        pass
    return {"dataset": str(path), "dataset_sha256": digest, "n_items": len(items), "skipped_lines": list(problems),
            "run_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "git_commit": commit}
