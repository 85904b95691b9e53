"""Log lines cannot be forged: whatever text a record carries, one record is one printable line."""

from __future__ import annotations

import json
import logging

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from syndicate import logs

# Any text, with the characters that forge lines or repaint terminals made likely.
hostile_text = st.text(st.sampled_from(["\n", "\r", "\x1b", "\x07", "\x9b", "\u2028", "\u202e", "\x00", "\t"])
                       | st.characters(exclude_categories=("Cs",)), max_size=40).map(
    lambda s: s + "\nERROR syndicate: forged\x1b[2J\x07")

CONTROL = [chr(c) for c in [*range(0x20), *range(0x7f, 0xa0)]] + ["\u2028", "\u2029", "\u202e"]


@pytest.mark.parametrize("log_format", ["text", "json"])
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(message=hostile_text, argument=hostile_text)
def test_one_record_is_one_printable_line(capsys: pytest.CaptureFixture[str], log_format: str, message: str,
                                          argument: str) -> None:
    logs.setup(-1, log_format)  # -q: errors only
    logging.getLogger("syndicate.pipeline").error(message.replace("%", "%%") + " %s", argument)
    err = capsys.readouterr().err
    lines = err.split("\n")
    assert lines[-1] == "" and len(lines) == 2, err  # exactly one line, newline-terminated
    assert not any(c in lines[0] for c in CONTROL), lines[0]
    if log_format == "json":
        assert "forged" in json.loads(lines[0])["message"]
    else:
        assert lines[0].startswith("ERROR syndicate.pipeline: ")


@pytest.mark.parametrize("log_format", ["text", "json"])
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(message=hostile_text)
def test_a_traceback_never_starts_a_line_that_looks_like_a_record(capsys: pytest.CaptureFixture[str],
                                                                  log_format: str, message: str) -> None:
    logs.setup(-1, log_format)
    try:
        raise ValueError(message)
    except ValueError:
        logging.getLogger("syndicate").exception("failed")
    err = capsys.readouterr().err
    lines = err.rstrip("\n").split("\n")
    assert not any(c in line for line in lines for c in CONTROL if c != "\n")
    if log_format == "json":
        assert len(lines) == 1
    else:
        assert lines[0] == "ERROR syndicate: failed"
        assert all(line.startswith("  ") for line in lines[1:])
