"""Outputs of an eval run: ``results.json``, the one-file ``report.html`` and the terminal summary.

The report is self-contained: inline CSS and SVG charts drawn here (no script, no CDN, no font
download). Every text that comes from a dataset, an answer or a passage is HTML-escaped.
"""

from __future__ import annotations

import json
from datetime import datetime
from html import escape
from pathlib import Path
from typing import Any, Iterable

from .dataset import CATEGORIES
from .metrics import METRIC_KEYS, QUESTION_WORDS

METRIC_LABELS = {
    "n_items": "questions évaluées",
    "hit@1": "preuve au 1er passage récupéré",
    "hit@3": "preuve dans les 3 premiers passages",
    "hit@5": "preuve dans les 5 premiers passages",
    "mrr": "rang réciproque moyen de la 1re preuve",
    "answer_accuracy": "réponses justes (questions avec réponse)",
    "citation_precision": "passages cités qui contiennent une preuve",
    "citation_recall": "questions dont au moins un passage cité contient une preuve",
    "abstention_rate": "abstentions sur les questions sans réponse",
    "false_abstention_rate": "abstentions à tort (questions avec réponse)",
    "token_f1": "F1 des mots contre la réponse de référence",
    "latency_ms_p50": "latence médiane (ms)",
    "latency_ms_p95": "latence 95e centile (ms)",
    "latency_ms_max": "latence maximale (ms)",
}
LOWER_IS_BETTER = {"false_abstention_rate", "latency_ms_p50", "latency_ms_p95", "latency_ms_max"}
CATEGORY_LABELS = {"french": "français", "english": "anglais", "unanswerable": "sans réponse",
                   "multi-turn": "multi-tours"}
CHART_METRICS = ("hit@1", "answer_accuracy", "citation_precision", "citation_recall", "abstention_rate",
                 "false_abstention_rate", "token_f1")
CHART_LABELS = {"hit@1": "hit@1", "answer_accuracy": "justes", "citation_precision": "précision cit.",
                "citation_recall": "rappel cit.", "abstention_rate": "abstention", "false_abstention_rate": "abst. à tort",
                "token_f1": "token F1"}
COLORS = ("#1f5fa8", "#d9822b", "#2e8b57", "#a23b72", "#6b6b6b", "#c0392b", "#7d5ba6", "#1a9c9c")
STATUS_ORDER = {"fail": 0, "warn": 1, "pass": 2}
STATUS_LABELS = {"fail": "échec", "warn": "à vérifier", "pass": "juste"}


# -- formatting ------------------------------------------------------------------------------
def fmt(value: Any, key: str = "") -> str:
    if value is None:
        return "—"
    if key.startswith("latency") or key.endswith("_median"):
        return f"{value:.1f}" if isinstance(value, float) else str(value)
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def _baseline(runs: list[dict[str, Any]]) -> dict[str, Any] | None:
    return next((r for r in runs if r["config"].get("engine") == "llama-index-baseline"), None)


# -- results.json ----------------------------------------------------------------------------
def results_document(runs: list[dict[str, Any]], info: dict[str, Any]) -> dict[str, Any]:
    """The shared format's ``{"metrics", "config", "items"}`` for the first configuration, plus
    ``runs``: every configuration (the first included) with its metrics, per-category accuracy,
    diagnostics and items."""
    primary = runs[0]
    return {"metrics": primary["metrics"], "config": {**primary["config"], **info}, "items": _compact(primary["items"]),
            "runs": [{**{k: run[k] for k in ("name", "config", "metrics", "categories", "diagnostics")
                         if k in run}, "question_words": run.get("question_words", {}),
                      "items": _compact(run["items"])} for run in runs]}


def _compact(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Retrieved passages by location (``retrieved_passages``), not by their full text."""
    return [{k: v for k, v in item.items() if k != "retrieved"} for item in items]


def write_outputs(out_dir: str | Path, runs: list[dict[str, Any]], info: dict[str, Any]) -> tuple[Path, Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    results_path, report_path = out / "results.json", out / "report.html"
    results_path.write_text(json.dumps(results_document(runs, info), ensure_ascii=False, indent=2), encoding="utf-8")
    report_path.write_text(render_html(runs, info), encoding="utf-8")
    return results_path, report_path


# -- terminal summary ------------------------------------------------------------------------
def summary_rows(runs: list[dict[str, Any]]) -> list[list[str]]:
    """Metric rows, then accuracy per category and answer length, one column per configuration."""
    rows = [["métrique", *[r["name"] for r in runs]]]
    for key in METRIC_KEYS:
        rows.append([key, *[fmt(r["metrics"][key], key) for r in runs]])
    for category in CATEGORIES:
        cells = []
        for r in runs:
            c = r["categories"][category]
            cells.append("—" if not c["n"] else f"{fmt(c['accuracy'])} ({c['correct']}/{c['n']})")
        rows.append([f"justes : {CATEGORY_LABELS[category]}", *cells])
    rows.append(["réponse (car., médiane)", *[fmt(r["diagnostics"]["answer_chars_median"], "_median") for r in runs]])
    rows.append(["justes et <= 450 car.", *[fmt(r["diagnostics"].get("correct_and_short")) for r in runs]])
    rows.append(["réponses sûres : couverture", *[fmt(r["diagnostics"].get("sure_coverage")) for r in runs]])
    rows.append(["réponses sûres : justes", *[fmt(r["diagnostics"].get("sure_precision")) for r in runs]])
    rows.append(["AURC (risque-couverture)", *[fmt(r["diagnostics"].get("aurc")) for r in runs]])
    words = [w for w in QUESTION_WORDS if any(r.get("question_words", {}).get(w, {}).get("n") for r in runs)]
    for word in words:
        cells = []
        for r in runs:
            c = r.get("question_words", {}).get(word) or {"n": 0}
            cells.append("—" if not c["n"] else f"{fmt(c['accuracy'])} (hit@1 {fmt(c['hit@1'])}, n={c['n']})")
        rows.append([f"justes : « {word} »", *cells])
    return rows


def summary_table(runs: list[dict[str, Any]]) -> str:
    rows = summary_rows(runs)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row)))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _legend(names: list[str], x: float, y: float) -> str:
    parts, cursor = [], x
    for i, name in enumerate(names):
        parts.append(f'<rect x="{cursor:.1f}" y="{y - 9:.1f}" width="10" height="10" fill="{COLORS[i % len(COLORS)]}"/>'
                     f'<text x="{cursor + 14:.1f}" y="{y:.1f}" class="lg">{escape(name)}</text>')
        cursor += 24 + 7 * len(name)
    return "".join(parts)


def bar_chart(title: str, groups: list[str], series: list[tuple[str, list[float | None]]],
              max_value: float = 1.0, width: int = 760, height: int = 280) -> str:
    """Grouped vertical bars (one colour per series), values written above the bars."""
    left, right, top, bottom = 40, 10, 46, 44
    plot_w, plot_h = width - left - right, height - top - bottom
    parts = [f'<svg viewBox="0 0 {width} {height}" width="{width}" '
             f'height="{height}" role="img" aria-label="{escape(title)}">',
             f'<text x="{left}" y="16" class="tt">{escape(title)}</text>',
             _legend([name for name, _ in series], left, 34)]
    for tick in range(0, 5):
        value = max_value * tick / 4
        y = top + plot_h - plot_h * tick / 4
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
                     f'<text x="{left - 4}" y="{y + 4:.1f}" class="ax" text-anchor="end">{value:.2g}</text>')
    group_w = plot_w / max(1, len(groups))
    bar_w = group_w * 0.8 / max(1, len(series))
    for g, group in enumerate(groups):
        x0 = left + g * group_w + group_w * 0.1
        for s, (name, values) in enumerate(series):
            value = values[g]
            x = x0 + s * bar_w
            if value is None:
                parts.append(f'<text x="{x + bar_w / 2:.1f}" y="{top + plot_h - 3:.1f}" class="na" '
                             f'text-anchor="middle">n/a</text>')
                continue
            h = plot_h * min(value, max_value) / max_value if max_value else 0
            parts.append(f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{max(bar_w - 2, 1):.1f}" height="{h:.1f}" '
                         f'fill="{COLORS[s % len(COLORS)]}"><title>{escape(name)} — {escape(group)} : {value:.3f}</title></rect>')
            if bar_w >= 26:
                parts.append(f'<text x="{x + bar_w / 2 - 1:.1f}" y="{top + plot_h - h - 3:.1f}" class="vl" '
                             f'text-anchor="middle">{value:.2f}</text>')
        parts.append(f'<text x="{x0 + group_w * 0.4:.1f}" y="{height - bottom + 16:.1f}" class="ax" '
                     f'text-anchor="middle">{escape(group)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _latency_bins(values: Iterable[float]) -> list[float]:
    """1-2-5 bin edges (ms) covering the values."""
    values = list(values) or [1.0]
    top = max(values)
    edges = [0.0]
    for exponent in range(-1, 7):
        for mantissa in (1, 2, 5):
            edge = mantissa * 10 ** exponent
            edges.append(edge)
            if edge > top:
                break
        if edges[-1] > top:
            break
    low = min(values)
    while len(edges) > 3 and edges[2] <= low:  # drop empty bins below the smallest value
        edges.pop(1)
    return edges


def _edge_label(value: float) -> str:
    return f"{value:g}" if value < 1000 else f"{value / 1000:g}k"


def latency_histograms(runs: list[dict[str, Any]], width: int = 760) -> str:
    """One histogram per configuration, on the same logarithmic (1-2-5) bins."""
    edges = _latency_bins(item["latency_ms"] for run in runs for item in run["items"])
    bins = list(zip(edges[:-1], edges[1:]))
    chart_h, left, bottom = 120, 40, 30
    height = 24 + len(runs) * (chart_h + bottom + 10)
    parts = [f'<svg viewBox="0 0 {width} {height}" width="{width}" '
             f'height="{height}" role="img" aria-label="histogramme des latences">',
             '<text x="40" y="16" class="tt">Latence par question (ms, classes 1-2-5)</text>']
    plot_w = width - left - 10
    bin_w = plot_w / max(1, len(bins))
    for r, run in enumerate(runs):
        y0 = 24 + r * (chart_h + bottom + 10)
        counts = [sum(1 for item in run["items"] if a <= item["latency_ms"] < b) for a, b in bins]
        peak = max(counts) or 1
        color = COLORS[r % len(COLORS)]
        parts.append(f'<text x="{left}" y="{y0 + 12}" class="lg">{escape(run["name"])} — médiane '
                     f'{fmt(run["metrics"]["latency_ms_p50"], "latency")} ms</text>')
        base = y0 + chart_h
        parts.append(f'<line x1="{left}" x2="{width - 10}" y1="{base}" y2="{base}" class="grid"/>')
        for i, ((a, b), count) in enumerate(zip(bins, counts)):
            h = (chart_h - 22) * count / peak
            x = left + i * bin_w
            if count:
                parts.append(f'<rect x="{x + 1:.1f}" y="{base - h:.1f}" width="{bin_w - 2:.1f}" height="{h:.1f}" '
                             f'fill="{color}"><title>{_edge_label(a)}–{_edge_label(b)} ms : {count}</title></rect>'
                             f'<text x="{x + bin_w / 2:.1f}" y="{base - h - 3:.1f}" class="vl" '
                             f'text-anchor="middle">{count}</text>')
            parts.append(f'<text x="{x + bin_w / 2:.1f}" y="{base + 14}" class="ax" text-anchor="middle">'
                         f'{_edge_label(a)}–{_edge_label(b)}</text>')
    parts.append("</svg>")
    return "".join(parts)


# -- HTML ------------------------------------------------------------------------------------
CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;margin:24px auto;max-width:1400px;
color:#1d1d1f;padding:0 16px;line-height:1.4}
h1{font-size:1.5em;margin-bottom:4px}h2{font-size:1.2em;margin-top:32px;border-bottom:1px solid #ddd}
.meta{color:#555;font-size:.9em}table{border-collapse:collapse;font-size:.88em}
th,td{border:1px solid #d6d6d6;padding:4px 7px;vertical-align:top;text-align:left}
th{background:#f2f4f7}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.delta{font-size:.8em;margin-left:4px}.better{color:#1e7d32}.worse{color:#b3261e}
.items td{max-width:360px}.fail{background:#fdecea}.warn{background:#fff7e0}.pass{background:#fff}
.st{font-weight:600;white-space:nowrap}.small{font-size:.85em;color:#555}
mark{background:#fff1a8}details summary{cursor:pointer;color:#1f5fa8}
.ok{color:#1e7d32;font-weight:600}.ko{color:#b3261e;font-weight:600}
.chart{margin:12px 0}.tt{font-size:14px;font-weight:600}.ax{font-size:11px;fill:#444}.lg{font-size:12px}
.vl{font-size:10px;fill:#333}.na{font-size:10px;fill:#999}.grid{stroke:#e3e3e3;stroke-width:1}
.thr-ok{color:#1e7d32}.thr-ko{color:#b3261e;font-weight:600}pre{white-space:pre-wrap;margin:0;font-family:inherit}
"""


def _metrics_table(runs: list[dict[str, Any]]) -> str:
    baseline = _baseline(runs)
    head = "".join(f"<th>{escape(r['name'])}</th>" for r in runs)
    rows = [f"<tr><th>métrique</th><th>sens</th>{head}</tr>"]
    for key in METRIC_KEYS:
        cells = []
        for run in runs:
            value = run["metrics"][key]
            cell = escape(fmt(value, key))
            if baseline is not None and run is not baseline and key != "n_items" and value is not None \
                    and baseline["metrics"][key] is not None:
                delta = value - baseline["metrics"][key]
                if abs(delta) > 1e-9:
                    better = (delta < 0) if key in LOWER_IS_BETTER else (delta > 0)
                    shown = f"{delta:+.1f}" if key.startswith("latency") else f"{delta:+.3f}"
                    cell += f'<span class="delta {"better" if better else "worse"}">({shown})</span>'
            cells.append(f'<td class="num">{cell}</td>')
        rows.append(f"<tr><td><b>{escape(key)}</b></td><td class=\"small\">{escape(METRIC_LABELS[key])}</td>"
                    + "".join(cells) + "</tr>")
    for category in CATEGORIES:
        cells = []
        for run in runs:
            c = run["categories"][category]
            cells.append(f'<td class="num">{"—" if not c["n"] else escape(fmt(c["accuracy"]))}'
                         f'<span class="small"> ({c["correct"]}/{c["n"]})</span></td>')
        rows.append(f"<tr><td>justes : {escape(CATEGORY_LABELS[category])}</td>"
                    f"<td class=\"small\">part des questions de la catégorie traitées justement</td>{''.join(cells)}</tr>")
    cells = "".join(f'<td class="num">{escape(fmt(r["diagnostics"]["answer_chars_median"], "_median"))}</td>' for r in runs)
    rows.append("<tr><td>réponse (car.)</td><td class=\"small\">longueur médiane des réponses données : "
                f"une réponse longue contient des faits par hasard</td>{cells}</tr>")
    note = ("<p class=\"small\">Entre parenthèses : l'écart avec la référence llama-index "
            f"« {escape(baseline['name'])} » (vert : mieux, rouge : moins bien).</p>") if baseline else ""
    return f"<table>{''.join(rows)}</table>{note}"


def _thresholds(info: dict[str, Any]) -> str:
    checks = info.get("threshold_checks") or []
    if not checks:
        return ""
    rows = []
    for check in checks:
        ok = check["passed"]
        rows.append(f"<tr><td>{escape(check['option'])}</td><td>{escape(check['metric'])}</td>"
                    f"<td class=\"num\">{escape(fmt(check['value']))}</td><td class=\"num\">{check['threshold']:g}</td>"
                    f"<td class=\"{'thr-ok' if ok else 'thr-ko'}\">{'atteint' if ok else 'MANQUÉ'}</td></tr>")
    return ("<h2>Seuils</h2><table><tr><th>option</th><th>métrique</th><th>valeur</th><th>seuil</th><th></th></tr>"
            + "".join(rows) + "</table>")


def _highlighted(citation: dict[str, Any]) -> str:
    text = escape(citation["text"])
    for quote in citation.get("quotes") or []:
        quoted = escape(quote)
        if quoted and quoted in text:
            text = text.replace(quoted, f"<mark>{quoted}</mark>", 1)
    return text


def _citations_cell(item: dict[str, Any]) -> str:
    if not item["citations"]:
        return '<span class="small">aucun</span>'
    parts = []
    for c in item["citations"]:
        where = " › ".join(x for x in (c.get("source") or "", c.get("section") or "") if x)
        verdict = ""
        if item["evidence"]:
            from .metrics import contains_evidence

            verdict = (' <span class="ok">✓ preuve</span>' if contains_evidence(c["text"], item["evidence"])
                       else ' <span class="ko">✗ sans preuve</span>')
        parts.append(f"<details><summary>[{escape(str(c['number']))}] {escape(where)}{verdict}</summary>"
                     f"<pre>{_highlighted(c)}</pre></details>")
    return "".join(parts)


def _expected_cell(item: dict[str, Any]) -> str:
    parts = []
    if not item["answerable"]:
        parts.append("<i>sans réponse dans le corpus : s'abstenir</i>")
    for group in item["expected"]:
        parts.append("• " + " <span class=\"small\">ou</span> ".join(f"« {escape(s)} »" for s in group))
    if item["evidence"]:
        parts.append("<details><summary>preuves</summary>"
                     + "".join(f"<pre>{escape(e)}</pre><hr>" for e in item["evidence"]) + "</details>")
    if item.get("reference_answer"):
        parts.append(f"<details><summary>réponse de référence</summary><pre>{escape(item['reference_answer'])}</pre></details>")
    return "<br>".join(parts) or '<span class="small">—</span>'


def _question_cell(item: dict[str, Any]) -> str:
    out = escape(item["question"])
    if item.get("history"):
        turns = "".join(f"<div><b>{escape(t['role'])}</b> : {escape(t['content'])}</div>" for t in item["history"])
        out += f"<details><summary>historique ({len(item['history'])} tours)</summary>{turns}</details>"
    if item.get("query") and item["query"] != item["question"]:
        out += f'<div class="small">requête cherchée : {escape(item["query"])}</div>'
    return out


def _others_cell(item: dict[str, Any], others: list[tuple[str, dict[str, dict[str, Any]]]]) -> str:
    parts = []
    for name, by_id in others:
        other = by_id.get(item["id"])
        if other is None:
            continue
        mark = '<span class="ok">✓</span>' if other["correct"] else '<span class="ko">✗</span>'
        answer = other["answer"] if len(other["answer"]) <= 400 else other["answer"][:400] + "…"
        reason = f'<div class="small">{escape(other["reason"])}</div>' if other.get("reason") else ""
        parts.append(f"<details><summary>{mark} {escape(name)}</summary><pre>{escape(answer)}</pre>{reason}</details>")
    return "".join(parts)


def _items_table(runs: list[dict[str, Any]]) -> str:
    primary = runs[0]
    others = [(r["name"], {i["id"]: i for i in r["items"]}) for r in runs[1:]]
    order = sorted(range(len(primary["items"])),
                   key=lambda n: (STATUS_ORDER.get(primary["items"][n]["status"], 3), n))
    head = ("<tr><th>résultat</th><th>id</th><th>question</th><th>réponse</th><th>passages cités</th>"
            "<th>attendu</th><th>pourquoi</th><th>rang preuve</th><th>ms</th>"
            + ("<th>autres configurations</th>" if others else "") + "</tr>")
    rows = [head]
    for n in order:
        item = primary["items"][n]
        status = item["status"]
        answer = escape(item["answer"]) + (' <span class="small">(abstention)</span>' if item["abstained"] else "")
        rows.append(
            f'<tr class="{status}"><td class="st">{escape(STATUS_LABELS.get(status, status))}</td>'
            f'<td>{escape(item["id"])}<div class="small">{escape(CATEGORY_LABELS.get(item["category"], item["category"]))}</div></td>'
            f"<td>{_question_cell(item)}</td><td><pre>{answer}</pre></td><td>{_citations_cell(item)}</td>"
            f"<td>{_expected_cell(item)}</td><td>{escape(item.get('reason') or '')}</td>"
            f'<td class="num">{escape(fmt(item["retrieval_rank"]))}</td><td class="num">{item["latency_ms"]:.1f}</td>'
            + (f"<td>{_others_cell(item, others)}</td>" if others else "") + "</tr>")
    return f'<table class="items">{"".join(rows)}</table>'


def _config_table(runs: list[dict[str, Any]]) -> str:
    keys: list[str] = []
    for run in runs:
        keys += [k for k in run["config"] if k not in keys and k != "name"]
    head = "".join(f"<th>{escape(r['name'])}</th>" for r in runs)
    rows = [f"<tr><th>réglage</th>{head}</tr>"]
    for key in keys:
        cells = "".join(f"<td>{escape(fmt(r['config'].get(key)))}</td>" for r in runs)
        rows.append(f"<tr><td>{escape(key)}</td>{cells}</tr>")
    return f"<table>{''.join(rows)}</table>"


def risk_coverage_chart(runs: list[dict[str, Any]], width: int = 760, height: int = 300) -> str:
    """Risk (share of wrong answers) against coverage (share of questions answered, surest first),
    one line per configuration that gives confidences: the lower the line, the better."""
    lines = [(r["name"], r["diagnostics"].get("curve") or []) for r in runs]
    lines = [(name, points) for name, points in lines if points]
    if not lines:
        return ""
    left, top, plot_w, plot_h = 50, 30, width - 220, height - 70
    colours = ("#1f5fa8", "#c2410c", "#15803d", "#7e22ce", "#a16207")
    parts = [f'<svg viewBox="0 0 {width} {height}" width="{width}" role="img" '
             f'aria-label="Risque selon la couverture"><text x="{left}" y="18" font-weight="bold">'
             "Risque (réponses fausses) selon la couverture (réponses les plus sûres d'abord)</text>",
             f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#555"/>',
             f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="#555"/>']
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        x, y = left + tick * plot_w, top + plot_h - tick * plot_h
        parts.append(f'<text x="{x:.0f}" y="{top + plot_h + 16}" font-size="11" text-anchor="middle">{tick:g}</text>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.0f}" font-size="11" text-anchor="end">{tick:g}</text>')
    for n, (name, points) in enumerate(lines):
        path = " ".join(f"{left + c * plot_w:.1f},{top + plot_h - r * plot_h:.1f}" for c, r in points)
        colour = colours[n % len(colours)]
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{path}"/>')
        parts.append(f'<text x="{left + plot_w + 12}" y="{top + 14 + 16 * n}" fill="{colour}" font-size="12">'
                     f'{escape(name)}</text>')
    parts.append(f'<text x="{left + plot_w / 2:.0f}" y="{height - 8}" font-size="11" text-anchor="middle">couverture</text>')
    parts.append("</svg>")
    return "".join(parts)


def render_html(runs: list[dict[str, Any]], info: dict[str, Any]) -> str:
    primary = runs[0]
    names = [r["name"] for r in runs]
    metrics_chart = bar_chart("Métriques principales (0 à 1)", [CHART_LABELS[k] for k in CHART_METRICS],
                              [(r["name"], [r["metrics"][k] for k in CHART_METRICS]) for r in runs])
    category_chart = bar_chart(
        "Réponses justes par catégorie", [f"{CATEGORY_LABELS[c]} (n={primary['categories'][c]['n']})" for c in CATEGORIES],
        [(r["name"], [r["categories"][c]["accuracy"] for c in CATEGORIES]) for r in runs])
    failures = sum(1 for i in primary["items"] if i["status"] == "fail")
    skipped = info.get("skipped_lines") or []
    skipped_html = ("<details><summary>" + f"{len(skipped)} ligne(s) invalide(s) ignorée(s)</summary>"
                    + "".join(f"<div>{escape(p)}</div>" for p in skipped) + "</details>") if skipped else ""
    title = f"Évaluation — {Path(str(info.get('dataset', 'dataset'))).name}"
    return f"""<!DOCTYPE html>
<html lang="fr"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title><style>{CSS}</style></head><body>
<h1>{escape(title)}</h1>
<div class="meta">{escape(str(info.get('dataset', '')))} · {primary['metrics']['n_items']} questions ·
sha256 {escape(str(info.get('dataset_sha256', ''))[:12])} · {escape(str(info.get('run_at', datetime.now().isoformat(timespec='seconds'))))}
{(' · commit ' + escape(str(info['git_commit']))) if info.get('git_commit') else ''} ·
configurations : {escape(', '.join(names))}</div>
{skipped_html}
<h2>Métriques</h2>
<p class="small">Règles de correspondance et définitions : format partagé des jeux d'évaluation
(normalisation NFKC, apostrophes et guillemets ASCII, espaces fusionnés, casse ignorée ; accents gardés pour les preuves,
ignorés pour les faits attendus). Le tableau des questions ci-dessous porte sur la première configuration
(« {escape(primary['name'])} »).</p>
{_metrics_table(runs)}
{_thresholds(info)}
<h2>Graphiques</h2>
<div class="chart">{metrics_chart}</div>
<div class="chart">{category_chart}</div>
<div class="chart">{risk_coverage_chart(runs)}</div>
<div class="chart">{latency_histograms(runs)}</div>
<h2>Questions — « {escape(primary['name'])} » ({failures} échec(s) en premier)</h2>
<p class="small">Rouge : échec (réponse fausse, abstention à tort ou réponse à une question sans réponse).
Jaune : réponse juste mais à vérifier (passage cité sans preuve, preuve non récupérée…).
Les phrases citées sont surlignées dans leur passage.</p>
{_items_table(runs)}
<h2>Configurations</h2>
{_config_table(runs)}
</body></html>
"""
