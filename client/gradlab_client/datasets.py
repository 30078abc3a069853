"""`client.datasets`: upload your own data set and list the ones a job can train on
(`data.dataset` takes the `id`: a built-in name or `upload:<id>`).

An upload is an .npz saved with numpy.savez: `x` (rows first), `y` (integer labels), and
optionally a fixed test split `x_test`, `y_test`."""

from __future__ import annotations

from pathlib import Path

from gradlab_contract.models import DatasetInfo

from gradlab_client._http import HTTP


class Datasets:
    def __init__(self, http: HTTP) -> None:
        self._http = http

    def upload(
        self, path: str | Path, *, name: str | None = None, description: str = ""
    ) -> DatasetInfo:
        """Upload an .npz (`name` defaults to the file's); use the returned `id` as a spec's
        `data.dataset`. Sent once, never retried: a second upload would store a second copy."""
        path = Path(path)
        form = {"description": description, **({"name": name} if name else {})}
        with path.open("rb") as stream:
            files = {"file": (path.name, stream, "application/octet-stream")}
            response = self._http.request(
                "POST", "/v1/datasets", data=form, files=files, retry=False
            )
        return DatasetInfo.model_validate_json(response.content)

    def list(self) -> list[DatasetInfo]:
        """The built-in data sets and the team's uploads."""
        response = self._http.request("GET", "/v1/datasets", retry=True)
        return [DatasetInfo.model_validate(item) for item in response.json()]
