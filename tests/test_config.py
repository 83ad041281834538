"""Settings precedence: defaults < TOML file < ASSISTANT_* variables < explicit overrides."""

from pathlib import Path

import pytest

from assistant.config import Settings, load_settings
from assistant.errors import AssistantError


def test_precedence(tmp_path):
    toml = tmp_path / "assistant.toml"
    toml.write_text('[assistant]\ntop_k = 7\nretrieval_mode = "dense"\nindex_dir = "/tmp/x"\n', encoding="utf-8")
    assert Settings().top_k == 5
    assert load_settings(config_file=toml, env={}).top_k == 7
    settings = load_settings(config_file=toml, env={"ASSISTANT_TOP_K": "9", "ASSISTANT_ABSTAIN_THRESHOLD": "0.6"})
    assert settings.top_k == 9 and settings.abstain_threshold == 0.6 and settings.retrieval_mode == "dense"
    assert settings.index_dir == Path("/tmp/x")
    assert load_settings(config_file=toml, env={"ASSISTANT_TOP_K": "9"}, top_k=3).top_k == 3


def test_bad_values_are_clear(tmp_path):
    with pytest.raises(AssistantError, match="top_k"):
        load_settings(env={"ASSISTANT_TOP_K": "beaucoup"})
    with pytest.raises(AssistantError, match="inconnu"):
        Settings().with_overrides(no_such_setting=1)
    with pytest.raises(AssistantError, match="introuvable"):
        load_settings(config_file=tmp_path / "absent.toml", env={})
