"""`make bench`: this assistant beside plain llama-index on the same files, at three corpus sizes.

    .venv/bin/python benchmarks/scale.py [--sizes programme piaf-dev large] [--questions 60]

Each (size, system) runs in a child process of its own, so that its peak RSS is its own (read with
``os.wait4``). "ours" is ``Assistant.load`` (hybrid retrieval, extractive answers, the configured
embedding backend); "llama-index" is ``VectorStoreIndex.from_documents`` with its default
``SentenceSplitter`` and the same e5 model through sentence-transformers (torch), what a plain
llama-index user gets. Questions: the dataset of the corpus, the first ``--questions``; each is
asked once to warm up, then timed (search, then ask) with the query cache cleared.

Sizes: ``programme`` is ``corpus/``; ``piaf-dev`` is ``../shared/benchmarks/piaf-dev/corpus``;
``large`` is both plus Debian's French manual pages (``manpages-fr``, ``manpages-fr-dev``) rendered
to text by ``man``, and the French manuals of a few Debian packages as web pages and PDFs (installed by
``make bench``), in ``data/bench/large``: more than 20 MB of extracted text.
Results: a Markdown table on stdout and ``data/bench/results.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PIAF = ROOT.parent / "shared" / "benchmarks" / "piaf-dev"
MAN_ROOT = Path("/usr/share/man/fr")
# French manuals of Debian packages: web pages and PDFs, read by the corpus reader like any document.
FRENCH_DOC_PACKAGES = ("debian-reference-fr", "developers-reference-fr", "debian-faq-fr", "maint-guide-fr",
                       "debian-edu-doc-fr", "gimp-help-fr", "aptitude-doc-fr", "kicad-doc-fr", "linuxcnc-doc-fr",
                       "debian-handbook")
SIZES = {
    "programme": (ROOT / "corpus", ROOT / "evals" / "datasets" / "dev.jsonl"),
    "piaf-dev": (PIAF / "corpus", PIAF / "questions.jsonl"),
    "large": (ROOT / "data" / "bench" / "large", PIAF / "questions.jsonl"),
}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def text_bytes(folder: Path) -> int:
    """UTF-8 bytes of the text the corpus reader extracts (web pages without their markup)."""
    from assistant.corpus import read_corpus

    return sum(len(d.text.encode("utf-8")) for d in read_corpus(folder)[0])


def make_large_corpus(target: Path) -> Path:
    """The programme page, piaf-dev's articles and every French manual page as text (``man``)."""
    if (target / ".complete").exists():
        return target
    pages = sorted(p for p in MAN_ROOT.rglob("*") if p.is_file() and not p.is_symlink())  # links: aliases
    if not pages:
        raise SystemExit("Pages de manuel françaises absentes : `make bench` installe manpages-fr et manpages-fr-dev.")
    shutil.rmtree(target, ignore_errors=True)
    (target / "man").mkdir(parents=True)
    shutil.copytree(ROOT / "corpus", target / "programme", ignore=shutil.ignore_patterns("manifest.toml"))
    shutil.copytree(PIAF / "corpus", target / "piaf-dev")
    env = dict(os.environ, MANWIDTH="100", LANG="fr_FR.UTF-8", MAN_KEEP_FORMATTING="0")
    for page in pages:
        name = page.name.removesuffix(".gz")
        done = subprocess.run(["man", "--nh", "--nj", "-l", "-E", "UTF-8", str(page)], capture_output=True, env=env, timeout=60)
        text = done.stdout.decode("utf-8", "replace")
        text = "".join(c for c in text if c >= " " or c in "\n\t")  # no backspace overstrikes
        if len(text.strip()) < 200:  # a .so redirect or an empty page
            continue
        (target / "man" / f"{page.parent.name}-{name}.txt").write_text(text, encoding="utf-8")
    for package in FRENCH_DOC_PACKAGES:
        listed = subprocess.run(["dpkg", "-L", package], capture_output=True, text=True).stdout.split()
        french = [p for p in listed if p.endswith((".html", ".pdf")) and Path(p).is_file() and not Path(p).is_symlink()
                  and (package != "debian-handbook" or "/fr-FR/" in p)]  # the handbook holds every language
        for number, page in enumerate(sorted(french)):
            (target / package).mkdir(exist_ok=True)
            shutil.copyfile(page, target / package / f"{number:04d}-{Path(page).name}")
    (target / ".complete").write_text("", encoding="utf-8")
    return target


def questions(path: Path, count: int) -> list[str]:
    items = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [item["question"] for item in items if not item.get("history")][:count]


def run_ours(corpus: Path, asked: list[str], work: Path, vector_store: str = "faiss") -> dict:
    from assistant import Assistant
    from assistant.config import load_settings

    settings = load_settings(corpus_dir=corpus, index_dir=work / "index", data_dir=work / "data",
                             vector_store=vector_store)
    started = time.perf_counter()
    assistant = Assistant.load(settings=settings)
    loaded = time.perf_counter() - started
    build = assistant.index.manifest["build_seconds"]
    for question in asked:  # warm-up
        assistant.ask(question)
    # Two passes, not search then ask per question: the engine reuses the analysis of the pool the
    # reranker just made for the same question, which would flatter the second call.
    timings: dict[str, list[float]] = {"search": [], "ask": []}
    for name, call in (("search", assistant.search), ("ask", assistant.ask)):
        for question in asked:
            assistant.embedder._query_cache.clear()  # noqa: SLF001 - time the real query embedding
            t0 = time.perf_counter()
            call(question)
            timings[name].append((time.perf_counter() - t0) * 1000)
    search_ms, ask_ms = timings["search"], timings["ask"]
    return {"build_s": build, "load_s": round(loaded, 2), "chunks": len(assistant.index.chunks),
            "documents": assistant.index.manifest["documents"], "search_ms": search_ms, "ask_ms": ask_ms,
            "backend": assistant.embedder.backend}


def run_llama_index(corpus: Path, asked: list[str], work: Path) -> dict:
    from llama_index.core import Document, VectorStoreIndex

    from assistant.config import load_settings
    from assistant.corpus import load_corpus
    from assistant.embeddings import Embedder
    from assistant.stores.files import llama_embedding

    settings = load_settings(corpus_dir=corpus, index_dir=work / "index", data_dir=work / "data",
                             embedding_backend="torch")
    started = time.perf_counter()
    embed_model = llama_embedding(Embedder.from_settings(settings))
    begun = time.perf_counter()
    documents = [Document(text=d.text, id_=d.id, metadata={"title": d.title}) for d in load_corpus(corpus)]
    index = VectorStoreIndex.from_documents(documents, embed_model=embed_model)
    build = time.perf_counter() - begun
    retriever = index.as_retriever(similarity_top_k=2)
    for question in asked:
        retriever.retrieve(question)
    search_ms = []
    for question in asked:
        t0 = time.perf_counter()
        retriever.retrieve(question)
        search_ms.append((time.perf_counter() - t0) * 1000)
    # Its "answer" is the top passage: asking costs what searching costs.
    return {"build_s": round(build, 2), "load_s": round(time.perf_counter() - started, 2),
            "chunks": len(index.docstore.docs), "documents": len(documents), "search_ms": search_ms,
            "ask_ms": search_ms, "backend": "torch"}


SYSTEMS = {
    "ours": run_ours,
    # The same, its index in PostgreSQL (the embedded server, started under the run's data folder;
    # the server is a process of its own: its memory is not in this row's peak RSS).
    "ours-postgres": lambda corpus, asked, work: run_ours(corpus, asked, work, vector_store="postgres"),
    "llama-index": run_llama_index,
}


def child(system: str, corpus: Path, dataset: Path, count: int) -> None:
    asked = questions(dataset, count)
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        result = SYSTEMS[system](corpus, asked, Path(tmp))
    result["questions"] = len(asked)
    print(json.dumps(result))


def measure(system: str, size: str, count: int) -> dict:
    corpus, dataset = SIZES[size]
    process = subprocess.Popen([sys.executable, __file__, "--child", system, str(corpus), str(dataset), str(count)],
                               stdout=subprocess.PIPE, text=True)
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    if status != 0:
        raise SystemExit(f"{system} / {size} a échoué (code {status}).")
    result = json.loads(output.strip().splitlines()[-1])
    kb = text_bytes(corpus) / 1000
    search, ask = result.pop("search_ms"), result.pop("ask_ms")
    return {"system": system, "size": size, "corpus_kb": round(kb, 1), **result,
            "kb_per_s": round(kb / result["build_s"], 1) if result["build_s"] else None,
            "search_ms_p50": round(statistics.median(search), 1), "search_ms_p95": round(percentile(search, 95), 1),
            "ask_ms_p50": round(statistics.median(ask), 1), "ask_ms_p95": round(percentile(ask, 95), 1),
            "peak_rss_mb": round(usage.ru_maxrss / 1024, 1)}


def table(rows: list[dict]) -> str:
    columns = [("size", "corpus"), ("corpus_kb", "KB of text"), ("system", "system"), ("documents", "documents"),
               ("chunks", "chunks"), ("build_s", "build s"), ("kb_per_s", "KB/s"), ("search_ms_p50", "search p50 ms"),
               ("search_ms_p95", "search p95 ms"), ("ask_ms_p50", "ask p50 ms"), ("ask_ms_p95", "ask p95 ms"),
               ("peak_rss_mb", "peak RSS MB")]
    lines = ["| " + " | ".join(label for _, label in columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(row.get(key, "")) for key, _ in columns) + " |" for row in rows]
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]), int(sys.argv[5]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", choices=list(SIZES), default=list(SIZES))
    parser.add_argument("--systems", nargs="+", choices=list(SYSTEMS), default=list(SYSTEMS))
    parser.add_argument("--questions", type=int, default=60)
    args = parser.parse_args()
    if "large" in args.sizes:
        make_large_corpus(SIZES["large"][0])
    rows = []
    for size in args.sizes:
        for system in args.systems:
            rows.append(measure(system, size, args.questions))
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    out = ROOT / "data" / "bench" / "results.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "rows": rows}, indent=2),
                   encoding="utf-8")
    print(table(rows))


if __name__ == "__main__":
    main()
