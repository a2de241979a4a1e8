"""Progress bars and completion order: scaler.progress, client.map(progress=True), scaler.as_completed."""

from __future__ import annotations

import io
import sys

import pytest

import scaler
from scaler import Client
from tests import tasks


def test_a_map_with_progress_ends_with_the_bar_full(client: Client, capsys: pytest.CaptureFixture[str]) -> None:
    assert client.map(tasks.square, [(i,) for i in range(1000)], progress=True) == [i * i for i in range(1000)]
    bar = capsys.readouterr().err
    assert "1000/1000" in bar and "square" in bar


def test_progress_over_futures_waits_for_all_and_returns_them(client: Client) -> None:
    futures = [client.submit(tasks.add, i, 1) for i in range(20)]
    screen = io.StringIO()
    assert scaler.progress(futures, "adding", file=screen) is futures
    assert all(f.done() for f in futures) and [f.result() for f in futures] == list(range(1, 21))
    assert "adding" in screen.getvalue() and "20/20" in screen.getvalue()


def test_progress_over_an_iterable_of_results_returns_them_as_a_list(client: Client) -> None:
    screen = io.StringIO()
    results = (f.result() for f in [client.submit(tasks.square, i) for i in range(5)])
    assert scaler.progress(results, total=5, file=screen) == [0, 1, 4, 9, 16]  # a generator has no length
    assert "5/5" in screen.getvalue()


def test_as_completed_yields_each_future_once_first_ended_first(client: Client) -> None:
    sleeper = client.submit(tasks.sleep_and_return, 60, "late")
    quick = client.submit(tasks.square, 3)
    order = []
    for future in scaler.as_completed([sleeper, quick, quick]):
        order.append(future)
        if future is quick:
            sleeper.cancel()  # ends the sleeper, which then comes second
    assert order == [quick, sleeper] and sleeper.cancelled()


def test_as_completed_with_results_pairs_each_future_with_its_value_and_raises_a_failure(client: Client) -> None:
    futures = [client.submit(tasks.square, i) for i in range(10)]
    assert sorted(value for _, value in scaler.as_completed(futures, with_results=True)) == [i * i for i in range(10)]
    failing = client.submit(tasks.raise_value_error, "boom")
    with pytest.raises(ValueError, match="boom"):
        list(scaler.as_completed([failing], with_results=True))


def test_as_completed_raises_timeout_error_when_futures_outlast_the_timeout(client: Client) -> None:
    sleeper = client.submit(tasks.sleep_and_return, 60, "late")
    with pytest.raises(TimeoutError):
        list(scaler.as_completed([sleeper], timeout=0.2))
    sleeper.cancel()


def test_a_map_with_progress_but_no_tqdm_says_which_extra_to_install(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # makes the import fail
    with pytest.raises(ImportError, match=r"scaler\[progress\]"):
        client.map(tasks.square, [(1,)], progress=True)
