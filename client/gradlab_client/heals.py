"""client.heals: read, wait for and cancel a heal (start one with client.jobs.heal)."""

from __future__ import annotations

from urllib.parse import quote

from gradlab_contract.models import Heal

from gradlab_client._http import HTTP
from gradlab_client._poll import poll_until_done


class Heals:
    def __init__(self, http: HTTP) -> None:
        self._http = http

    def get(self, heal_id: str) -> Heal:
        """The heal: its status, each round's job, findings, changes and outcome."""
        response = self._http.request("GET", _heal_path(heal_id), retry=True)
        return Heal.model_validate_json(response.content)

    def cancel(self, heal_id: str) -> Heal:
        """Stop the heal and cancel its current job; safe to repeat."""
        response = self._http.request("POST", f"{_heal_path(heal_id)}/cancel", retry=True)
        return Heal.model_validate_json(response.content)

    def wait(self, heal_id: str, *, timeout: float | None = None,
             poll_interval: float = 2.0) -> Heal:
        """Poll until the heal has ended (healed, exhausted, failed or cancelled). Raises
        Timeout once `timeout` seconds have passed."""
        return poll_until_done(lambda: self.get(heal_id), lambda heal: heal.done,
                               lambda heal: f"heal {heal_id} is still {heal.status}",
                               timeout=timeout, poll_interval=poll_interval)

def _heal_path(heal_id: str) -> str:
    return f"/v1/heals/{quote(heal_id, safe='')}"
