"""The "Évaluation" tab: built in a Blocks, launched, and run through gradio_client."""

import json

import pytest

gr = pytest.importorskip("gradio")

from ui.eval_tab import build_eval_tab, run_evaluation  # noqa: E402

from .conftest import free_port

ITEMS = [
    {"id": "t1", "question": "Quand l'opération Barkhane s'est-elle retirée du Mali ?", "lang": "fr",
     "must_include": [["15 août 2022"]], "evidence": ["retirée du Mali le 15 août 2022"]},
    {"id": "t2", "question": "Quel est le budget annuel du programme en euros ?", "answerable": False},
    {"id": "t3", "question": "Et quand a-t-elle officiellement pris fin ?",
     "history": [{"role": "user", "content": "Quand Barkhane a-t-elle quitté le Mali ?"},
                 {"role": "assistant", "content": "Le 15 août 2022 [1]."}],
     "must_include": [["9 novembre 2022"]]},
]



@pytest.fixture
def small_set(tmp_path):
    path = tmp_path / "three.jsonl"
    path.write_text("\n".join(json.dumps(i, ensure_ascii=False) for i in ITEMS) + "\n", encoding="utf-8")
    return path


@pytest.mark.slow
def test_eval_tab_runs_through_the_api(assistant, settings, small_set):
    from gradio_client import Client, handle_file

    with gr.Blocks() as demo:
        with gr.Tab("Évaluation"):
            build_eval_tab(assistant, settings)
    port = free_port()
    demo.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        status, metrics, items, results_path, report_path = client.predict(
            handle_file(str(small_set)), False, ["extractive"], False, api_name="/run_eval")
        with pytest.raises(Exception, match="réessayez dans"):  # one run per person and period
            client.predict(handle_file(str(small_set)), False, ["extractive"], False, api_name="/run_eval")
    finally:
        demo.close()
    assert "3 questions" in status
    assert metrics["headers"][0] == "métrique" and any(row[0] == "answer_accuracy" for row in metrics["data"])
    assert items["headers"][:2] == ["résultat", "id"] and {row[1] for row in items["data"]} == {"t1", "t2", "t3"}
    results = json.loads(open(results_path, encoding="utf-8").read())
    assert results["metrics"]["n_items"] == 3 and len(results["items"]) == 3
    assert "<svg" in open(report_path, encoding="utf-8").read()
    written = list((settings.data_dir / "evals").glob("*/results.json"))
    assert written, "results are kept under DATA_DIR/evals/<timestamp>"


def test_eval_tab_reports_a_bad_dataset(tmp_path, settings):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": "a", "question": "Q ?"}\n{broken\n', encoding="utf-8")
    out = run_evaluation(None, settings, str(path), False, ["extractive"])
    assert "line 2" in out["status"] and out["results"] is None and out["report"] is None
    # Words for this page: its checkbox, not the CLI's flag; the file's name, not the server's path.
    assert "Ignorer les lignes invalides" in out["status"] and "--skip-invalid" not in out["status"]
    assert str(tmp_path) not in out["status"] and "bad.jsonl" in out["status"]
    assert "fichier" in run_evaluation(None, settings, None, False, ["extractive"])["status"]


def test_run_limiter_one_at_a_time_and_one_per_period():
    import threading

    from ui.access import RunLimiter

    now = [0.0]
    limiter = RunLimiter(interval=60, clock=lambda: now[0])
    assert limiter.run("alice", lambda: "fait") == "fait"
    with pytest.raises(RuntimeError, match="réessayez dans 60 s"):
        limiter.run("alice", lambda: "encore")
    assert limiter.run("bob", lambda: "fait") == "fait"  # per person
    now[0] = 61
    started, release = threading.Event(), threading.Event()
    worker = threading.Thread(target=limiter.run, args=("alice", lambda: (started.set(), release.wait(5))))
    worker.start()
    started.wait(5)
    with pytest.raises(RuntimeError, match="déjà en cours"):
        limiter.run("carol", lambda: "en même temps")
    release.set()
    worker.join()
