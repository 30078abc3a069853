"""The SDK's own behaviour, without a server: configuration, headers, paging, wait() and the
pandas helpers. (Every call against the real app: test_sdk_e2e.py.)"""

from __future__ import annotations

import io
import sys
from collections.abc import Callable
from typing import Any

import gradlab_client as gl
import httpx
import pytest
from gradlab_client._progress import ProgressBar
from gradlab_client.client import DEFAULT_URL, Client

SPEC = {"data": {"dataset": "spiral"}, "training": {"steps": 10}}


def job_json(status: str = "running", step: int = 3, job_id: str = "j1") -> dict[str, Any]:
    return {"id": job_id, "status": status, "spec": SPEC, "created_at": "2024-01-01T00:00:00Z",
            "progress": {"step": step, "total_steps": 10}}


def mock(handler: Callable[[httpx.Request], httpx.Response], **kwargs: Any) -> Client:
    http = httpx.Client(transport=httpx.MockTransport(handler))
    return Client(http_client=http, **kwargs)


def test_url_and_key_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[httpx.Request] = []
    monkeypatch.setenv("GRADLAB_URL", "http://env.test:9000/")
    monkeypatch.setenv("GRADLAB_API_KEY", "glk_env")
    client = mock(lambda r: (seen.append(r), httpx.Response(200, json=job_json()))[1])
    client.jobs.get("j1")
    assert str(seen[0].url) == "http://env.test:9000/v1/jobs/j1"
    assert seen[0].headers["authorization"] == "Bearer glk_env"
    assert seen[0].headers["user-agent"].startswith("gradlab-client/")


def test_arguments_win_and_defaults_apply(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRADLAB_API_KEY", "glk_env")
    client = Client(base_url="http://arg.test", api_key="glk_arg")
    assert client.base_url == "http://arg.test"
    assert client._http._headers["Authorization"] == "Bearer glk_arg"
    monkeypatch.delenv("GRADLAB_URL", raising=False)
    monkeypatch.delenv("GRADLAB_API_KEY")
    bare = Client()
    assert bare.base_url == DEFAULT_URL and "Authorization" not in bare._http._headers
    assert "glk" not in repr(client)


def test_the_client_is_keyword_only() -> None:
    with pytest.raises(TypeError):
        Client("http://x")  # type: ignore[misc]


def test_an_injected_http_client_is_left_open_and_an_own_one_is_closed() -> None:
    http = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(200)))
    with Client(http_client=http):
        pass
    assert not http.is_closed
    own = Client()
    own.close()
    assert own._http._client.is_closed


def test_ids_are_quoted_into_the_path() -> None:
    seen: list[httpx.Request] = []
    client = mock(lambda r: (seen.append(r), httpx.Response(200, json=job_json()))[1])
    client.jobs.get("../catalog")
    assert seen[0].url.raw_path == b"/v1/jobs/..%2Fcatalog"


def test_list_follows_cursors_across_pages_lazily() -> None:
    pages = {None: (["a", "b"], "c1"), "c1": (["c"], "c2"), "c2": ([], None)}
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        ids, cursor = pages[request.url.params.get("cursor")]
        return httpx.Response(200, json={"items": [job_json(job_id=i) for i in ids],
                                         "next_cursor": cursor})

    jobs = mock(handler).jobs.list(status="running", page_size=2)
    assert next(jobs).id == "a" and len(seen) == 1  # nothing fetched before it is needed
    assert [job.id for job in jobs] == ["b", "c"]
    assert seen[0].url.params["status"] == "running" and seen[0].url.params["limit"] == "2"
    assert "name" not in seen[0].url.params  # None filters are left out


def test_metrics_joins_names_and_wraps_the_series() -> None:
    seen: list[httpx.Request] = []
    body = {"series": [{"name": "loss", "steps": [1, 2], "values": [0.5, None]}]}
    client = mock(lambda r: (seen.append(r), httpx.Response(200, json=body))[1])
    result = client.jobs.metrics("j1", names=["loss", "acc"], start_step=1)
    assert seen[0].url.params["names"] == "loss,acc" and seen[0].url.params["start_step"] == "1"
    assert isinstance(result, gl.MetricsResult) and result.get("loss") is not None
    assert result.get("acc") is None and result[0].values == [0.5, None]


def test_wait_raises_timeout_with_the_last_state() -> None:
    client = mock(lambda r: httpx.Response(200, json=job_json("running")))
    with pytest.raises(gl.Timeout) as caught:
        client.jobs.wait("j1", timeout=0.05, poll_interval=0.01, progress=False)
    assert caught.value.job is not None and caught.value.job.status == "running"


def test_wait_returns_the_terminal_job() -> None:
    states = iter(["queued", "running", "diverged"])
    client = mock(lambda r: httpx.Response(200, json=job_json(next(states))))
    job = client.jobs.wait("j1", poll_interval=0.001, progress=False)
    assert job.status == "diverged" and job.done


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_progress_bar_draws_only_on_a_terminal() -> None:
    job = gl.Job.model_validate(job_json(step=5))
    terminal, log = FakeTerminal(), io.StringIO()
    for stream in (terminal, log):
        bar = ProgressBar(stream)
        bar.update(job, "loss=0.1")
        bar.close()
    assert "5/10 running loss=0.1" in terminal.getvalue() and "50%" in terminal.getvalue()
    assert log.getvalue() == ""


def test_wait_draws_progress_on_a_terminal_stderr(monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    states = iter(["running", "succeeded"])
    client = mock(lambda r: httpx.Response(200, json=job_json(next(states), step=10)))
    client.jobs.wait("j1", poll_interval=0.001)
    assert "10/10 succeeded" in terminal.getvalue()
    assert terminal.getvalue().endswith("\n")


def test_to_pandas_says_how_to_install_pandas(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)  # makes `import pandas` fail
    result = gl.MetricsResult([gl.MetricSeries(name="loss", steps=[1], values=[1.0])])
    with pytest.raises(ImportError, match=r"pip install 'gradlab-client\[pandas\]'"):
        result.to_pandas()
    snapshots = gl.SnapshotIterator(lambda cursor: ([], None))
    with pytest.raises(ImportError, match="pandas"):
        snapshots.to_pandas()


SNAPSHOT = {
    "step": 10, "kind": "gradient", "layer": "fc1", "depth": 0,
    "stats": {"mean": 0.0, "std": 1.0}, "histogram": {"edges": [0.0, 1.0], "counts": [4]},
}


def test_to_pandas_builds_frames() -> None:
    pytest.importorskip("pandas")
    result = gl.MetricsResult([
        gl.MetricSeries(name="loss", steps=[1, 2], values=[1.0, None]),
        gl.MetricSeries(name="acc", steps=[2], values=[0.5]),
    ])
    wide = result.to_pandas()
    assert list(wide.columns) == ["loss", "acc"] and list(wide.index) == [1, 2]
    assert len(result.to_pandas(wide=False)) == 3
    pages = {None: ([gl.Snapshot.model_validate(SNAPSHOT)], "next"), "next": ([], None)}
    frame = gl.SnapshotIterator(lambda cursor: pages[cursor]).to_pandas()
    assert frame.loc[0, "layer"] == "fc1" and frame.loc[0, "std"] == 1.0


def test_snapshots_pass_filters_and_page() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        cursor = request.url.params.get("cursor")
        return httpx.Response(200, json={"items": [SNAPSHOT] if cursor is None else [],
                                         "next_cursor": "n" if cursor is None else None})

    items = list(mock(handler).jobs.snapshots("j1", kind="gradient", layer="fc1", step=10))
    assert len(items) == 1 and len(seen) == 2
    assert dict(seen[0].url.params) == {
        "kind": "gradient", "layer": "fc1", "step": "10", "limit": "100"}


def test_poll_until_done_returns_the_first_done_state_and_times_out_naming_the_last() -> None:
    from gradlab_client._poll import poll_until_done

    states = iter([1, 2, 3, 4])
    found = poll_until_done(lambda: next(states), lambda n: n >= 3, str, timeout=None,
                            poll_interval=0.001)
    assert found == 3
    with pytest.raises(gl.Timeout, match=r"still 7 after 0\.05s"):
        poll_until_done(lambda: 7, lambda n: False, lambda n: f"still {n}", timeout=0.05,
                        poll_interval=0.01)
