"""Plug points: built-ins, installed entry points and ``module:Class`` paths resolve
through one resolver; a task's answer-reading hook and its default."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from plugin_tasks import BareTask, EchoOptions, EchoTask

from fleetbench import plugins
from fleetbench.backends import get_backend_class
from fleetbench.backends.llamacpp import LlamaCppBackend
from fleetbench.errors import ConfigError
from fleetbench.tasks import NO_ANSWER, TASKS, Answer, Sample, get_task_class, task_names
from fleetbench.tasks.answers import read_answer, task_of_run
from fleetbench.tasks.textgen import TextGenTask


@pytest.fixture
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """An installed distribution registering tasks, as ``pip install`` would leave it."""
    dist = tmp_path / "fleetbench_echo-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fleetbench-echo\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[fleetbench.tasks]\necho = plugin_tasks:EchoTask\ntextgen = plugin_tasks:BareTask\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    plugins._installed.cache_clear()
    yield
    plugins._installed.cache_clear()


def test_builtins_resolve_to_their_classes() -> None:
    assert get_task_class("textgen") is TextGenTask
    assert get_backend_class("llamacpp") is LlamaCppBackend
    assert task_names() == ["code_io", "custom", "humaneval", "repo_task", "textgen", "wattbot"]


def test_a_module_path_resolves_like_a_builtin() -> None:
    assert get_task_class("plugin_tasks:EchoTask") is EchoTask
    assert get_task_class("plugin_tasks:BareTask") is BareTask  # no Task subclass needed


def test_an_installed_entry_point_adds_a_name(installed: None) -> None:
    assert "echo" in task_names()
    assert get_task_class("echo") is EchoTask
    assert get_task_class("textgen") is TextGenTask  # a built-in is never shadowed
    with pytest.raises(ConfigError, match=r"unknown task 'nosuch'; valid: code_io, custom, echo, "):
        get_task_class("nosuch")


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("nosuch", "unknown task 'nosuch'; valid: code_io, custom, humaneval, repo_task, textgen, "
         "wattbot or an importable 'package.module:ClassName'"),
        ("plugin_tasks:Nope", "cannot import task 'plugin_tasks:Nope': module 'plugin_tasks' "
         "has no attribute 'Nope'; valid: code_io, custom"),
        ("plugin_tasks:EchoOptions", "task 'plugin_tasks:EchoOptions' lacks 'name', "
         "'Options', 'samples', 'messages', 'score'; see fleetbench.tasks.Task"),
        ("plugin_tasks:PLUGIN_CONSTANT", "is not a class"),
    ],
)  # fmt: skip
def test_what_does_not_resolve_says_why(name: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re_escape(message)):
        TASKS.resolve(name)


def re_escape(text: str) -> str:
    import re

    return re.escape(text)


def test_a_plugin_module_that_fails_to_import_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "broken_plugin.py").write_text("raise RuntimeError('half-installed')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ConfigError, match=r"cannot import task 'broken_plugin:T': "
                       r"RuntimeError\('half-installed'\)"):  # fmt: skip
        get_task_class("broken_plugin:T")


def test_answers_read_through_the_task_hook_or_the_default() -> None:
    sample = Sample(index=0, id="w0", prompt="Repeat: apple", reference="apple")
    echo = task_of_run("plugin_tasks:EchoTask", {"task_options": {"words": ["apple"]}})
    assert read_answer(echo, sample, "Apple!", None) == Answer(key="echoed", blank=False)
    assert read_answer(echo, sample, "Apple!", "timeout") == NO_ANSWER
    bare = BareTask(EchoOptions())  # no read_answer: the default reading
    assert read_answer(bare, sample, ' "Yes." ', None) == Answer(key="yes", blank=False)
    assert read_answer(bare, sample, "  ", None) == NO_ANSWER
    textgen = task_of_run("textgen", {})  # inherits Task's default
    assert read_answer(textgen, sample, "Hello  World.", None) == Answer("hello world", False)
