"""Webhook delivery: the SSRF guard on the resolved address, Standard Webhooks signatures that a
receiver's own verification accepts, retries with backoff, and the outbox on both backends."""

from __future__ import annotations

import pytest
from gradlab_contract.spec import JobSpec

from store import jobs, leases, teams, webhooks
from store.db import Database
from store.settings import Settings
from tests.live.receiver import receiver
from worker.webhooks import Refused, WebhookDispatcher, check_address, deliver

SPEC = JobSpec.model_validate({"data": {"dataset": "spiral"}, "training": {"steps": 10}})


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8080/x", "http://localhost/x", "http://[::1]/x", "http://10.1.2.3/x",
    "http://192.168.0.7/x", "http://172.16.0.1/x", "http://169.254.169.254/latest/meta-data",
    "http://0.0.0.0/x", "http://[fe80::1]/x", "http://100.64.0.1/x",
])
def test_private_loopback_and_link_local_addresses_are_refused(url: str) -> None:
    with pytest.raises(Refused, match="not a public address"):
        check_address(url, allow_private=False)
    assert check_address(url, allow_private=True)


@pytest.mark.parametrize("url", ["ftp://example.com/x", "file:///etc/passwd", "http:///x"])
def test_only_http_urls_with_a_host_are_delivered(url: str) -> None:
    with pytest.raises(Refused, match="http"):
        check_address(url, allow_private=True)


def test_a_public_address_is_allowed() -> None:
    assert check_address("https://8.8.8.8/hook", allow_private=False) == "8.8.8.8"


def test_a_delivery_is_signed_verified_by_the_receiver_and_retried_on_5xx() -> None:
    secret = webhooks.new_secret()
    due = webhooks.DueDelivery("msg_1", "", secret, {"type": "job.finished", "data": {"x": 1}})
    with receiver() as hook:
        hook.secret, hook.statuses = secret, [500, 429]
        outcome = deliver(webhooks.DueDelivery(due.id, hook.url, secret, due.payload),
                          allow_private=True, max_wait=0.05)
    assert (outcome.delivered, outcome.attempts, outcome.status) == (True, 3, 204)
    assert hook.received == [due.payload] and hook.rejected == []


def test_a_wrong_secret_fails_the_receivers_check_and_is_not_retried() -> None:
    with receiver() as hook:
        hook.secret = webhooks.new_secret()
        outcome = deliver(webhooks.DueDelivery("msg_2", hook.url, webhooks.new_secret(), {}),
                          allow_private=True, max_wait=0.05)
    assert (outcome.delivered, outcome.attempts, outcome.status) == (False, 1, 400)
    assert hook.rejected and hook.received == []


def test_a_refused_address_fails_without_a_request() -> None:
    with receiver() as hook:
        outcome = deliver(webhooks.DueDelivery("msg_3", hook.url, webhooks.new_secret(), {}),
                          allow_private=False, max_wait=0.05)
    assert not outcome.delivered and hook.hits == 0 and "not a public address" in str(outcome.error)


def test_finished_jobs_become_deliveries_that_the_dispatcher_sends(
    database: Database, db_settings: Settings
) -> None:
    with database.transaction() as session:
        team = teams.create_team(session, name="hooks")
        other = teams.create_team(session, name="others")
        job = jobs.create_job(session, team_id=team.id, spec=SPEC, total_steps=10).job
    with receiver() as hook:
        with database.transaction() as session:
            made = webhooks.create_webhook(session, team_id=team.id, url=hook.url,
                                           events=["job.finished"])
            webhooks.create_webhook(session, team_id=other.id, url=hook.url,
                                    events=["job.finished"])  # another team's: not told
            attempt = leases.claim_job(session, job_id=job.id, worker="w", device="cpu",
                                       lease_seconds=60)
            assert attempt is not None
            leases.finish_job(session, job_id=job.id, attempt=attempt, status="diverged",
                              error="non-finite training loss at step 3")
        hook.secret = made.secret
        settings = db_settings.model_copy(update={"webhooks_allow_private": True})
        assert WebhookDispatcher(database, settings).run_once() == 1
        assert WebhookDispatcher(database, settings).run_once() == 0  # sent once
    assert [p["data"]["status"] for p in hook.received] == ["diverged"]
    assert hook.received[0]["data"]["error"] == "non-finite training loss at step 3"
    with database.read() as session:
        [delivery] = webhooks.list_deliveries(session, team_id=team.id, webhook_id=made.id)
    assert (delivery.status, delivery.attempts, delivery.response_status) == ("succeeded", 1, 204)


def test_a_new_finding_is_a_job_finding_delivery_once(database: Database) -> None:
    from diagnosis import Finding
    from store import findings

    found = Finding(code="no_learning", severity="error", title="stuck", detail="d", step=60)
    with database.transaction() as session:
        team = teams.create_team(session, name="finders")
        job = jobs.create_job(session, team_id=team.id, spec=SPEC, total_steps=10).job
        hook = webhooks.create_webhook(session, team_id=team.id, url="http://example.com/h",
                                       events=["job.finding"])
        attempt = leases.claim_job(session, job_id=job.id, worker="w", device="cpu",
                                   lease_seconds=60)
        assert attempt is not None
        for _ in range(2):  # the live diagnosis writes the same finding again: nothing new
            findings.replace_findings(session, job_id=job.id, attempt=attempt,
                                      findings=[found.to_dict()], final=False)
    with database.read() as session:
        deliveries = webhooks.list_deliveries(session, team_id=team.id, webhook_id=hook.id)
    assert [(d.type, d.status, d.payload["data"]["new"]) for d in deliveries] == [
        ("job.finding", "pending", ["no_learning"])]
