"""Issue 26 point 14: ``assistant serve`` answers in worker processes (``ui/workers.py``), one per
core, so that the served app uses every core; the answers are those of the serving process's own
``Assistant``, and a worker that dies is replaced."""

from __future__ import annotations

import os
import signal
import time
from contextlib import contextmanager
from typing import Any, Iterator

import httpx
import pytest

from .conftest import free_port
from .test_web_hardening import call_named

QUESTIONS = ["Quand le mandat de la MINUSMA a-t-il pris fin ?", "Qu'est-ce que le CNT ?",
             "Quel est le rôle de l'IMRAP ?"]


def _same(answer: dict) -> dict:
    """An answer without its timings (the time it took differs from one run to the next)."""
    return {key: value for key, value in answer.items() if key != "timings"}


@contextmanager
def served_with_workers(assistant: Any, settings: Any, count: int = 2) -> Iterator[tuple[str, Any]]:
    from ui.app import build_app, launch
    from ui.workers import AnswerWorkers

    workers = AnswerWorkers(assistant, count, settings)
    try:
        assert workers.wait_ready(timeout=300), "the answer workers did not start"
        demo = build_app(assistant, settings, evaluation=False, answers=workers)
        _, url, _ = launch(demo, port=free_port(), prevent_thread_lock=True, quiet=True)
        try:
            yield url, workers
        finally:
            demo.close()
    finally:
        workers.close()


def _ask(http: httpx.Client, question: str, history: list[dict]) -> tuple[str, Any]:
    return call_named(http, "ask", [question, history], timeout=120)


@pytest.mark.slow
def test_served_with_two_workers_ask_answers_as_in_process(assistant, settings):
    with served_with_workers(assistant, settings) as (url, workers), httpx.Client(base_url=url, timeout=120) as http:
        assert len(workers.pids()) == 2 and os.getpid() not in workers.pids()
        history: list[dict] = []
        for question in QUESTIONS:  # one conversation: each question with the history so far
            event, data = _ask(http, question, history)
            assert event == "complete", data
            expected = assistant.ask(question, history).to_dict()
            assert _same(data[0]) == _same(expected)
            assert set(data[0]) == set(expected)
            history += [{"role": "user", "content": question}, {"role": "assistant", "content": data[0]["text"]}]
        # A question the assistant refuses is refused the same way.
        event, data = _ask(http, "   ", [])
        assert event == "error"
        assert workers.answered == len(QUESTIONS) + 1  # every one from a worker, none in-process


@pytest.mark.slow
def test_a_worker_killed_is_replaced_and_the_answers_still_come(assistant, settings):
    with served_with_workers(assistant, settings) as (url, workers), httpx.Client(base_url=url, timeout=120) as http:
        before = workers.pids()
        os.kill(before[0], signal.SIGKILL)
        time.sleep(0.5)
        for question in QUESTIONS * 2:  # one of them meets the dead worker: answered in-process
            event, data = _ask(http, question, [])
            assert event == "complete", data
            assert _same(data[0]) == _same(assistant.ask(question, []).to_dict())
        deadline = time.time() + 300
        while workers.ready() < 2 and time.time() < deadline:
            time.sleep(0.5)
        after = workers.pids()
        assert len(after) == 2 and before[0] not in after and before[1] in after
        assert workers.replaced == 1
        answered = workers.answered
        for question in QUESTIONS * 2:  # both workers answer again
            event, data = _ask(http, question, [])
            assert event == "complete" and _same(data[0]) == _same(assistant.ask(question, []).to_dict())
        assert workers.answered == answered + len(QUESTIONS) * 2


def test_a_new_gradio_session_does_not_configure_the_whole_page(monkeypatch):
    """Each /ask call is a new Gradio session; Gradio 6 configured every component of the page for
    each (about 6 ms of the server's CPU per answer): ``ui.sessions`` defers it to the deep-link
    route, which gets the same configuration as before."""
    import gradio as gr
    from gradio.blocks import BlocksConfig
    from gradio.state_holder import SessionState

    from ui.sessions import lazy_session_configs

    assert lazy_session_configs() and lazy_session_configs()  # idempotent
    with gr.Blocks() as demo:
        box = gr.Textbox("un", label="Question")
        gr.Markdown("Texte")
        gr.Button("Envoyer")
    expected = [demo.default_config.config_for_block(k, [], v)
                for k, v in demo.default_config.blocks.items() if k in demo.blocks]
    calls = []
    original = BlocksConfig.config_for_block
    monkeypatch.setattr(BlocksConfig, "config_for_block",
                        staticmethod(lambda _id, *args, **kw: calls.append(_id) or original(_id, *args, **kw)))
    state = SessionState(demo)
    assert calls == []  # nothing configured for a new session
    state._update_value_in_config(box._id, "deux")  # what an event does: that block only
    assert calls == [box._id]
    components = list(state.components)  # the deep-link route: the whole page, the value set included
    assert len(components) == len(expected)
    assert [c for c in components if c.get("id") == box._id][0]["props"]["value"] == "deux"
    assert [c for c in components if c.get("id") != box._id] == [c for c in expected if c.get("id") != box._id]


@pytest.mark.slow
def test_an_index_the_server_publishes_is_answered_from_at_once(settings, tmp_path):
    """After an upload (``Assistant.update`` in the serving process), the very next answer comes
    from the new index: a worker behind it catches up before answering, or the server answers."""
    import shutil

    from assistant import Assistant

    corpus = tmp_path / "corpus"
    shutil.copytree(settings.corpus_dir, corpus)
    local = settings.with_overrides(corpus_dir=corpus, index_dir=tmp_path / "index", data_dir=tmp_path / "data")
    server = Assistant.load(settings=local)
    question = "Quel jour la radio de Gao diffuse-t-elle l'émission Paroles de paix ?"

    def sources(answer: dict) -> set[str]:
        return {passage["source"] for passage in answer["retrieved"]}

    with served_with_workers(server, local) as (url, workers), httpx.Client(base_url=url, timeout=120) as http:
        assert "radio.md" not in sources(_ask(http, question, [])[1][0])
        (corpus / "radio.md").write_text("# Radio de Gao\n\nLa radio de Gao diffuse l'émission Paroles de paix "
                                         "chaque mardi soir, de 20 heures à 21 heures.\n", encoding="utf-8")
        assert server.update()["added"] == ["radio.md"]
        for _ in range(4):  # every worker, the first time it is asked after the update
            event, data = _ask(http, question, [])
            assert event == "complete" and "radio.md" in sources(data[0]), data
