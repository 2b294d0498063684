"""The control socket's frames: 4-byte big-endian length + UTF-8 JSON, 16 MiB at most."""

from __future__ import annotations

import struct

import pytest

from gunicorn.ctl import commands, protocol


def test_frame_is_length_prefixed_json() -> None:
    frame = protocol.encode({"id": 1, "command": "show stats", "args": []})
    (length,) = struct.unpack(">I", frame[:4])
    assert length == len(frame) - 4
    assert frame[4:] == b'{"id":1,"command":"show stats","args":[]}'


@pytest.mark.parametrize("step", [1, 2, 3, 5, 7, 1000])
def test_reader_reassembles_any_split(step: int) -> None:
    messages = [{"id": i, "command": "show workers", "args": ["é" * i]} for i in range(4)]
    stream = b"".join(protocol.encode(m) for m in messages)
    reader = protocol.FrameReader()
    got = []
    for start in range(0, len(stream), step):
        got += reader.feed(stream[start : start + step])
    assert got == messages
    assert reader.pending == 0


def test_announced_length_over_the_cap_fails_before_buffering() -> None:
    reader = protocol.FrameReader()
    with pytest.raises(protocol.ProtocolError, match="exceeds"):
        reader.feed(b"\xff\xff\xff\xff")
    assert protocol.MAX_MESSAGE == 16 * 1024 * 1024
    exact = protocol.FrameReader()
    assert exact.feed(struct.pack(">I", protocol.MAX_MESSAGE)) == []  # at the cap: waits


@pytest.mark.parametrize("payload", [b"not json", b"[1, 2]", b"\xff\xfe", b'"text"'])
def test_a_bad_frame_is_reported_in_place_and_the_stream_goes_on(payload: bytes) -> None:
    reader = protocol.FrameReader()
    good = protocol.encode({"id": 2, "command": "help"})
    out = reader.feed(struct.pack(">I", len(payload)) + payload + good)
    assert isinstance(out[0], protocol.ProtocolError)
    assert out[1] == {"id": 2, "command": "help"}


class _Control:
    arbiter = None


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ({"id": 1, "command": "launch rockets"}, "unknown command: launch rockets"),
        ({"id": 2}, "needs a 'command' string"),
        ({"id": 3, "command": "show", "args": "x"}, "needs a 'command' string"),
        ({"id": 4, "command": "worker add", "args": ["-1"]}, "expected a positive count"),
        ({"id": 5, "command": "worker kill"}, "usage: worker kill PID"),
        ({"id": 6, "command": "shutdown", "args": ["now"]}, "usage: shutdown"),
        ({"id": 7, "command": "show stats extra"}, "unexpected arguments: extra"),
    ],
)
def test_bad_commands_get_an_error_reply_with_their_id(message: dict, error: str) -> None:
    reply = commands.run(_Control(), message)
    assert reply["status"] == "error"
    assert reply["id"] == message.get("id")
    assert error in reply["error"]


def test_help_lists_every_command_of_gunicorn_27() -> None:
    reply = commands.run(_Control(), {"id": 9, "command": "help", "args": []})
    listed = {entry["command"] for entry in reply["data"]["commands"]}
    assert {
        "show all",
        "show workers",
        "show dirty",
        "show config",
        "show stats",
        "show listeners",
        "show metrics",
        "worker add",
        "worker remove",
        "worker kill",
        "dirty add",
        "dirty remove",
        "reload",
        "reopen",
        "shutdown",
        "help",
    } <= listed
