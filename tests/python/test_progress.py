"""The progress bar of `weir run`: drawn under dbt's per-node lines when
stdout is a terminal (a pseudo-terminal here), and never in a pipe, under
CI=true or with --log-format json, where the output stays plain text."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
from pathlib import Path

import pytest

from conftest import WEIR, copy_shop

BAR = re.compile(r"\[[#-]{30}\] (\d+)/5 \d\d:\d\d")
CLEAR = "\r\x1b[2K"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project_dir = copy_shop(tmp_path_factory.mktemp("progress") / "shop")
    done = subprocess.run(
        [str(WEIR), "seed", "--project-dir", str(project_dir)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return project_dir


def environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "COLUMNS")}
    return {**env, "TERM": "xterm", "COLUMNS": "120", **extra}


def run_args(project: Path, *extra: str) -> list[str]:
    return [str(WEIR), "run", "--project-dir", str(project), "--threads", "1", *extra]


def on_terminal(args: list[str], env: dict[str, str]) -> str:
    """What a command writes to stdout when stdout is a pseudo-terminal."""
    leader, follower = pty.openpty()
    child = subprocess.Popen(
        args, stdin=subprocess.DEVNULL, stdout=follower, stderr=subprocess.DEVNULL, env=env
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert child.wait(timeout=120) == 0, b"".join(chunks).decode()
    # The terminal turns "\n" into "\r\n".
    return b"".join(chunks).decode().replace("\r\n", "\n")


def piped(args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(args, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def comparable(text: str) -> list[str]:
    """Lines without what differs from run to run: clock, timings, dot padding."""
    text = re.sub(r"^\d\d:\d\d:\d\d  ", "", text, flags=re.M)
    text = re.sub(r"\d+\.\d+s", "Xs", text)
    text = re.sub(r"\.{3,}", "...", text)
    return text.splitlines()


def test_a_terminal_gets_a_bar_under_the_same_lines(project):
    shown = on_terminal(run_args(project), environment())
    bars = [BAR.search(part) for part in shown.split(CLEAR) if BAR.search(part)]
    done = [int(bar.group(1)) for bar in bars]
    assert done[0] == 0 and done[-1] == 5, shown
    assert done == sorted(done)
    assert "running 1: stg_customers" in shown
    # Without the bar (each drawn after a line and erased before the next),
    # the terminal shows exactly what a pipe gets.
    without_bar = re.sub(r"[^\n]*" + re.escape(CLEAR), "", shown)
    plain = piped(run_args(project), environment())
    assert comparable(without_bar) == comparable(plain)
    assert any(line.startswith("1 of 5 START sql view model") for line in comparable(plain))


def test_a_pipe_gets_plain_text(project):
    plain = piped(run_args(project), environment())
    assert "\x1b" not in plain and "\r" not in plain
    assert "Done. PASS=5" in plain


@pytest.mark.parametrize(
    ("extra", "env"),
    [([], {"CI": "true"}), (["--log-format", "json"], {}), ([], {"TERM": "dumb"})],
    ids=["ci", "json-log", "dumb-terminal"],
)
def test_no_bar_on_a_terminal_when_told_not_to(project, extra, env):
    shown = on_terminal(run_args(project, *extra), environment(**env))
    assert "\x1b" not in shown and not BAR.search(shown), shown
    if extra:
        assert all(json.loads(line)["info"]["name"] for line in shown.splitlines())
