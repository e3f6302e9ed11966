"""Fixtures of the Python clients' tests: each test file gets its own gateway and simulators (harness.py),
stopped when the file's tests are done; the file fails if any of them ended badly."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from harness import BIN, Harness, Stack

# The clients that need openai-python 2.x, in a venv of their own (.venv-openai2): never collected here.
collect_ignore = ["openai2"]


def pytest_configure(config: pytest.Config) -> None:
    if not os.access(BIN, os.X_OK):
        raise pytest.UsageError(f"{BIN} is not an executable: build ballast first (make build), or set BALLAST_BIN")


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    h = Harness(tmp_path_factory.mktemp("ballast"))
    yield h
    problems = h.stop_all()
    if problems:
        pytest.fail(
            f"{len(problems)} process(es) started by this file ended badly:\n\n" + "\n\n".join(problems),
            pytrace=False,
        )


@pytest.fixture(scope="module")
def stack(harness: Harness) -> Stack:
    return Stack(harness)
