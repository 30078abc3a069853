"""The SDK's public surface is deliberate: a name added to or dropped from it is a decision made
here, in review, not an accident of an import."""

from __future__ import annotations

import inspect

import gradlab_client
from gradlab_client.datasets import Datasets
from gradlab_client.heals import Heals
from gradlab_client.jobs import Jobs
from gradlab_client.studies import Studies
from gradlab_client.webhooks import Webhooks

EXPECTED_ALL = [
    # the client and what it returns
    "Client", "MetricsResult", "SnapshotIterator",
    "Job", "JobStatus", "TERMINAL_STATUSES", "Progress", "MetricSeries", "Snapshot", "Histogram",
    "Layer", "DatasetInfo", "Catalog", "CatalogValue", "Problem", "Diagnosis", "Finding",
    "RemedyOutcome", "Heal", "HealRound",
    "Study", "StudyCreate", "StudyComparison", "StudyTemplate", "Artifact", "StorageUsage",
    # following a job live
    "Event", "StatusEvent", "ProgressEvent", "MetricsEvent", "FindingsEvent", "StudyEvent",
    "EndEvent", "JobLogPage", "JobLogLine", "Webhook", "WebhookDelivery",
    # errors
    "GradlabError", "APIError", "NotFound", "Unauthorized", "ValidationError", "Conflict",
    "RateLimited", "ServiceUnavailable", "Timeout", "TransportError",
    # the job spec contract
    "JobSpec", "DataSpec", "AugmentSpec", "ModelSpec", "ConvLayerSpec", "InitSpec",
    "OptimizerSpec", "ScheduleSpec", "RegularizationSpec", "TrainingSpec", "TelemetrySpec",
    "EarlyStoppingSpec",
    "FieldError", "describe_errors",
    "__version__",
]

EXCEPTION_PARENTS = {
    "GradlabError": Exception,
    "APIError": gradlab_client.GradlabError,
    "NotFound": gradlab_client.APIError,
    "Unauthorized": gradlab_client.APIError,
    "ValidationError": gradlab_client.APIError,
    "Conflict": gradlab_client.APIError,
    "RateLimited": gradlab_client.APIError,
    "ServiceUnavailable": gradlab_client.APIError,
    "Timeout": gradlab_client.GradlabError,
    "TransportError": gradlab_client.GradlabError,
}


def test_all_is_exactly_the_agreed_list() -> None:
    assert sorted(gradlab_client.__all__) == sorted(EXPECTED_ALL)
    assert len(set(gradlab_client.__all__)) == len(gradlab_client.__all__)
    for name in gradlab_client.__all__:
        assert hasattr(gradlab_client, name), name


def test_the_exception_tree_is_as_documented() -> None:
    for name, parent in EXCEPTION_PARENTS.items():
        cls = getattr(gradlab_client, name)
        assert cls.__bases__ == (parent,), name
        assert name in (gradlab_client.errors.__doc__ or ""), f"{name} missing from the docstring"


def test_the_client_constructor_is_keyword_only() -> None:
    parameters = inspect.signature(gradlab_client.Client).parameters
    assert list(parameters) == ["base_url", "api_key", "timeout", "http_client", "max_retries"]
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in parameters.values())


def public_methods(cls: type) -> set[str]:
    functions = inspect.getmembers(cls, inspect.isfunction)
    return {name for name, _ in functions if not name.startswith("_")}


def test_the_resources_offer_exactly_these_calls() -> None:
    assert public_methods(gradlab_client.Client) == {"catalog", "close", "usage"}
    assert public_methods(Jobs) == {
        "create", "get", "list", "cancel", "wait", "metrics", "layers", "snapshots",
        "diagnosis", "remedy", "heal", "delete", "artifacts", "download", "model_card",
        "load_model", "stream", "logs",
    }
    assert public_methods(Heals) == {"get", "cancel", "wait"}
    assert public_methods(Webhooks) == {"create", "list", "delete", "deliveries"}
    assert public_methods(Datasets) == {"upload", "list", "delete"}
    assert public_methods(Studies) == {
        "create", "get", "list", "cancel", "compare", "templates", "wait", "stream",
    }


def test_optional_arguments_of_calls_are_keyword_only() -> None:
    for cls in (Jobs, Datasets, Studies, Heals, Webhooks):
        for name in public_methods(cls):
            positional = [
                p.name for p in inspect.signature(getattr(cls, name)).parameters.values()
                if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD and p.name != "self"
            ]
            assert len(positional) <= 1, f"{cls.__name__}.{name}: {positional}"
