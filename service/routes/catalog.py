"""/v1/catalog: what a spec may say here, for forms and for the CLI's help."""

from __future__ import annotations

from fastapi import APIRouter
from gradlab_contract.catalog import enum_values
from gradlab_contract.models import Catalog, CatalogValue

from service.deps import CurrentTeam, ServicesDep
from service.http.problems import problem_doc
from store.settings import Settings

router = APIRouter(prefix="/v1", tags=["catalog"], responses=problem_doc(401))

# The settings a client must respect when it writes a spec or an upload.
LIMITS = ("max_parameters", "max_activation_bytes", "max_steps", "max_batch_size", "max_bins",
          "max_upload_bytes", "max_queued_jobs_per_team", "max_running_jobs_per_team")


@router.get("/catalog", summary="Allowed values and limits")
def get_catalog(team: CurrentTeam, services: ServicesDep) -> Catalog:
    """Every enum of the job spec (by dotted field, e.g. `model.init.scheme`) with a one-line
    description of each value, and this deployment's limits on parameters, activation memory
    (bytes per batch), steps, batch size, histogram bins, upload size and queued jobs."""
    return build_catalog(services.settings)


def build_catalog(settings: Settings) -> Catalog:
    enums = {
        field: [CatalogValue(value=value, description=text) for value, text in values]
        for field, values in enum_values().items()
    }
    return Catalog(enums=enums, limits={name: float(getattr(settings, name)) for name in LIMITS})
