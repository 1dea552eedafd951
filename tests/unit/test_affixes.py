"""A model's prompt prefix/suffix wraps the last user turn, and only it."""

from __future__ import annotations

from fleetbench.backends import Message
from fleetbench.tasks import apply_affixes, chat_messages


def test_prefix_and_suffix_wrap_the_last_user_turn() -> None:
    messages = [
        Message(role="system", content="Be brief."),
        Message(role="user", content="Hi."),
        Message(role="assistant", content="Hello."),
        Message(role="user", content="What is 2 + 2?"),
    ]
    out = apply_affixes(messages, "/think", "/no_think")
    assert [m.content for m in out] == [
        "Be brief.",
        "Hi.",
        "Hello.",
        "/think What is 2 + 2? /no_think",
    ]
    assert messages[-1].content == "What is 2 + 2?"  # the input is not modified


def test_whitespace_in_the_affix_replaces_the_joining_space() -> None:
    out = apply_affixes(chat_messages("Say hi.", None), "<think>\n", "\nAnswer briefly.")
    assert out[-1].content == "<think>\nSay hi.\nAnswer briefly."


def test_no_affixes_or_no_user_turn_leaves_messages_alone() -> None:
    messages = chat_messages("Say hi.", "sys")
    assert apply_affixes(messages, "", "") == messages
    system_only = [Message(role="system", content="x")]
    assert apply_affixes(system_only, "/think", "") == system_only
    assert apply_affixes(messages, "", "/no_think")[-1].content == "Say hi. /no_think"
