"""The model hub over HTTP, under /v1/hub: artifacts (list, show, delete, verify), catalog, and
pull / convert as jobs (upload and path import are `server.routes.hub_imports`).

Long operations return `202` with a job at once, which `server.routes.hub_jobs` shows, streams and
cancels. Errors have the server's OpenAI shape.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import msgspec
from litestar import Router, delete, get, post
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec
from litestar.status_codes import HTTP_202_ACCEPTED

from hub.archives import ArchiveLimits
from hub.catalog import Catalog, CatalogEntry, Recipe, Target, local_targets, suitable_recipes
from hub.jobs import Job, JobRunner, Reporter
from hub.manifest import MANIFEST_FILE, Manifest
from hub.names import check_pull_ref
from hub.operations import convert_artifact, converters_available, pull
from hub.options import ConvertOptions, PullOptions
from hub.store import ArtifactDamaged, ArtifactNotFound, ArtifactStore, DamagedArtifact, InvalidName, validate_name
from server.http.errors import APIError, ErrorResponse, invalid_request
from server.serving.scheduler import Scheduler

_DESCRIPTIONS = {
    400: "Invalid request (a bad name, body or parameter)",
    404: "No such artifact or job",
    409: "The artifact is being served, or is damaged (its manifest cannot be read); the job has ended",
    413: "The upload is too large",
    507: "Not enough disk space for the upload",
}


def errors(*statuses: int) -> dict[int, ResponseSpec]:
    return {
        status: ResponseSpec(data_container=ErrorResponse, description=_DESCRIPTIONS[status], generate_examples=False)
        for status in statuses
    }


@dataclass
class HubState:
    """What the hub routes share: the store and the job runner (owned by the app's lifespan)."""

    store: ArtifactStore
    jobs: JobRunner
    max_upload_bytes: int
    archive_limits: ArchiveLimits
    catalog: Catalog
    max_import_files: int
    # What this machine can run, found on first use and kept: asking OpenVINO and ONNX Runtime for
    # their devices took 0.5-2.8 s at start-up (benchmarks/RESULTS.md, warm start), before the port
    # was bound, for a list only GET /v1/hub/catalog needs.
    _targets: list[Target] | None = None
    # The latest verification of each artifact, with the manifest's creation time it applies to (a
    # reinstall under the same name is not verified); bounded by the artifacts installed.
    verifications: dict[str, tuple[float | None, Verification]] = field(default_factory=dict)

    async def targets(self) -> list[Target]:
        """The targets this machine can run (`hub.catalog.local_targets`, probed once)."""
        if self._targets is None:
            self._targets = await asyncio.to_thread(local_targets)
        return self._targets


def provide_hub(state: State) -> HubState:
    """The hub state of the running app."""
    hub: HubState = state.hub
    return hub


class Verification(msgspec.Struct, kw_only=True):
    """POST /v1/hub/models/{name}/verify: the artifact's files re-hashed against its manifest."""

    name: str
    ok: bool
    # One line per damaged file (`path: sha256 differs`, `path: missing`, `path: size a != b`).
    problems: list[str]
    files: int
    bytes: int
    seconds: float
    # When it was checked.
    time: float
    object: Literal["hub.verification"] = "hub.verification"


class ArtifactList(msgspec.Struct):
    """GET /v1/hub/models."""

    data: list[Manifest]
    # Installed artifacts whose manifest cannot be read: not servable, removable with DELETE.
    damaged: list[DamagedArtifact] = msgspec.field(default_factory=list)
    # The latest verification of each listed artifact since the server started, if it had one.
    verified: list[Verification] = msgspec.field(default_factory=list)
    object: Literal["list"] = "list"


class Deleted(msgspec.Struct):
    """DELETE /v1/hub/models/{name}, shaped like OpenAI's model deletion."""

    id: str
    deleted: bool = True
    object: Literal["model"] = "model"


class CatalogItem(msgspec.Struct):
    """A catalog entry, with the recipes that suit this machine (best first)."""

    entry: CatalogEntry
    suitable: list[Recipe]
    installed: bool


class CatalogList(msgspec.Struct):
    """GET /v1/hub/catalog."""

    data: list[CatalogItem]
    targets: list[str]
    converters: bool
    object: Literal["list"] = "list"


def _not_found(name: str) -> APIError:
    return APIError(404, f"no artifact named `{name}` is installed", param="model", code="artifact_not_found")


def checked_name(name: str | None, param: str = "name") -> None:
    if name is not None:
        try:
            validate_name(name)
        except InvalidName as exc:
            raise invalid_request(str(exc), param=param, code="invalid_name") from exc


@get("/models", summary="List installed artifacts")
async def list_artifacts(hub: HubState) -> ArtifactList:
    """Every installed artifact's manifest, and the damaged ones (unreadable manifest) apart."""
    data, damaged = await asyncio.to_thread(lambda: (hub.store.artifacts(), hub.store.damaged()))
    created: dict[str, float | None] = {m.name: m.created for m in data} | {d.name: None for d in damaged}
    for name in [n for n, (when, _) in hub.verifications.items() if created.get(n, -1.0) != when]:
        del hub.verifications[name]  # removed or reinstalled since
    return ArtifactList(data=data, damaged=damaged, verified=[v for _, v in hub.verifications.values()])


def artifact_in_use(hub: HubState, scheduler: Scheduler, name: str) -> bool:
    """Whether a model is served from the artifact `name` (by its name or from its folder) and cannot
    be let go: a configured service, or an installed model that is loaded or busy."""
    folder = hub.store.path(name).resolve()
    for service in scheduler.names():
        path = Path(scheduler.deployment(service).spec.path).resolve()
        # An installed model served on first use and idle now is let go, as `ollama rm` does.
        if (service == name or path == folder or folder in path.parents) and not scheduler.forget(service):
            return True
    return False


@get("/models/{name:str}", summary="Show an artifact's manifest", responses=errors(400, 404, 409))
async def show_artifact(hub: HubState, name: str) -> Manifest:
    """The manifest: source and revision, files with sha256, tool versions, recipe. A damaged
    artifact (unreadable manifest) is a 409 that says so."""
    checked_name(name, "model")
    try:
        return await asyncio.to_thread(hub.store.get, name)
    except ArtifactNotFound as exc:
        raise _not_found(name) from exc
    except ArtifactDamaged as exc:
        raise APIError(409, str(exc), param="model", code="artifact_damaged") from exc


@delete("/models/{name:str}", summary="Remove an artifact", status_code=200, responses=errors(400, 404, 409))
async def delete_artifact(hub: HubState, scheduler: Scheduler, name: str) -> Deleted:
    """Remove an installed artifact; one being served is refused with 409."""
    checked_name(name, "model")
    if artifact_in_use(hub, scheduler, name):
        raise APIError(409, f"`{name}` is being served; stop serving it first", param="model", code="model_in_use")
    try:
        await asyncio.to_thread(hub.store.remove, name)
    except ArtifactNotFound as exc:
        raise _not_found(name) from exc
    return Deleted(id=name)


@get("/catalog", summary="Curated models and the variants that suit this machine")
async def catalog(hub: HubState) -> CatalogList:
    """The catalog, with each entry's suitable recipes for this machine."""
    targets = await hub.targets()
    can_convert = converters_available()
    installed = {m.name for m in await asyncio.to_thread(hub.store.artifacts)}
    items = [
        CatalogItem(entry=e, suitable=suitable_recipes(e, targets, can_convert), installed=e.name in installed)
        for e in hub.catalog.entries
    ]
    return CatalogList(data=items, targets=list(targets), converters=can_convert)


@post("/pull", summary="Pull a model (a job)", status_code=HTTP_202_ACCEPTED, responses=errors(400))
async def start_pull(hub: HubState, data: PullOptions) -> Job:
    """Start downloading (and converting) a catalog model or Hugging Face repo."""
    checked_name(data.name)
    if hub.catalog.get(data.model) is None:
        try:
            check_pull_ref(data.model, data.revision, data.precision)
        except InvalidName as exc:
            raise invalid_request(str(exc), param="model", code="not_found") from exc

    def work(report: Reporter) -> Manifest:
        return pull(hub.store, data, log=report.log, transfer=report.transfer)

    return hub.jobs.submit("pull", msgspec.structs.asdict(data), work)


@post(
    "/convert",
    summary="Convert an installed artifact (a job)",
    status_code=HTTP_202_ACCEPTED,
    responses=errors(400, 404),
)
async def start_convert(hub: HubState, data: ConvertOptions) -> Job:
    """Start converting an installed artifact into a new one."""
    checked_name(data.model, "model")
    checked_name(data.name)
    if not hub.store.exists(data.model):
        raise _not_found(data.model)

    def work(report: Reporter) -> Manifest:
        return convert_artifact(hub.store, data, log=report.log)

    return hub.jobs.submit("convert", msgspec.structs.asdict(data), work)


@post(
    "/models/{name:str}/verify",
    summary="Re-hash an artifact's files against its manifest",
    status_code=200,
    responses=errors(400, 404),
)
async def verify_artifact(hub: HubState, name: str) -> Verification:
    """Every file of the artifact is hashed again (sha256) and compared with its manifest; `ok` is
    false with one problem per damaged or missing file (an unreadable manifest is one problem).
    `GET /v1/hub/models` lists the latest result of each artifact under `verified`."""
    checked_name(name, "model")
    if not (hub.store.path(name) / MANIFEST_FILE).is_file():
        raise _not_found(name)

    def run() -> tuple[float | None, Verification]:
        started = time.perf_counter()
        problems = hub.store.verify(name)
        try:
            manifest: Manifest | None = hub.store.get(name)
        except ArtifactDamaged:
            manifest = None
        files = manifest.files if manifest is not None else []
        result = Verification(
            name=name,
            ok=not problems,
            problems=problems,
            files=len(files),
            bytes=sum(f.size for f in files),
            seconds=round(time.perf_counter() - started, 3),
            time=time.time(),
        )
        return (manifest.created if manifest is not None else None), result

    created, result = await asyncio.to_thread(run)
    hub.verifications[name] = (created, result)
    return result


router = Router(
    path="/v1/hub",
    route_handlers=[
        list_artifacts,
        show_artifact,
        delete_artifact,
        catalog,
        start_pull,
        start_convert,
        verify_artifact,
    ],
    tags=["hub"],
)
