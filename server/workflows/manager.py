"""The workflows of one server: stored definitions, runs in flight, finished records.

`WorkflowManager` is built by `workflows_lifespan` once the engines are up and reaches the routes
by dependency injection; nothing here knows about HTTP beyond raising `APIError`s. Definitions are
checked in job processes (jobs.py) after a size check, and their plans kept by the hash of their
text, so starting a run does not parse its workflow again.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from litestar import Litestar

from server.http.errors import APIError, invalid_request
from server.settings import SamplingDefaults, Settings, WorkflowSettings
from server.workflows.executor import Run
from server.workflows.gateway import ModelGateway, StepFailed, gateway_for
from server.workflows.jobs import JobFailed, JobPool
from server.workflows.limits import LimitError, check_size
from server.workflows.loader import WorkflowError
from server.workflows.records import InputError, RunRecord, bind_inputs
from server.workflows.store import WorkflowStore, valid_name
from server.workflows.tools import FileInput
from server.workflows.validate import Plan

# Plans kept by the hash of their text and the models they were checked against.
_PLANS_KEPT = 64

log = logging.getLogger(__name__)


def workflow_problems(error: WorkflowError) -> APIError:
    """400 listing every problem of a definition, one per line."""
    lines = "\n".join(f"- {p}" for p in error.problems)
    count = len(error.problems)
    noun = "problem" if count == 1 else "problems"
    return invalid_request(f"The workflow is not valid ({count} {noun}):\n{lines}", code="invalid_workflow")


def limit_exceeded(error: LimitError) -> APIError:
    """400 (413 for sizes) naming the limit and its setting."""
    return APIError(error.status, error.message, code=error.code)


def workflow_not_found(name: str) -> APIError:
    """404 for a workflow that is not stored."""
    return APIError(404, f"No workflow named `{name}`.", param="name", code="workflow_not_found")


class WorkflowManager:
    """Definitions on disk, validated against the models this server has; runs of them."""

    def __init__(
        self,
        store: WorkflowStore,
        gateway: ModelGateway,
        defaults: SamplingDefaults,
        settings: WorkflowSettings,
        jobs: JobPool,
    ) -> None:
        self.store = store
        self.gateway = gateway
        self.defaults = defaults
        self.settings = settings
        self.jobs = jobs
        self.active: dict[str, Run] = {}
        self._finishers: set[asyncio.Task[None]] = set()
        self._plans: OrderedDict[tuple[str, frozenset[str]], Plan] = OrderedDict()

    def check_name(self, name: str) -> None:
        """400 for a name that cannot be stored."""
        if not valid_name(name):
            raise invalid_request(
                f"Invalid workflow name `{name}`: lower-case letters, digits, `_` and `-`, starting with a letter.",
                param="name",
            )

    async def plan(self, text: str, file: str = "<workflow>") -> Plan:
        """Parse and validate YAML against this server's models, in a job process (400 with every
        problem; 400/413 naming the limit for a definition too large, too deep or too long)."""
        try:
            check_size(text, self.settings.workflow_max_bytes)
        except LimitError as exc:
            raise limit_exceeded(exc) from exc
        models = self.gateway.known_models()
        key = (hashlib.sha256(f"{file}\0{text}".encode()).hexdigest(), frozenset(models))
        cached = self._plans.get(key)
        if cached is not None:
            self._plans.move_to_end(key)
            return cached
        try:
            plan: Plan = await self.jobs.run("plan", text, file, models, self.settings)
        except WorkflowError as exc:
            raise workflow_problems(exc) from exc
        except LimitError as exc:
            raise limit_exceeded(exc) from exc
        except JobFailed as exc:
            raise APIError(
                400, f"The workflow cannot be checked: {exc}.", code=f"{exc.setting or 'workflow_job'}_exceeded"
            ) from exc
        self._plans[key] = plan
        while len(self._plans) > _PLANS_KEPT:
            self._plans.popitem(last=False)
        return plan

    async def stored_plan(self, name: str) -> tuple[str, Plan]:
        """The YAML and plan of a stored workflow (404 if there is none)."""
        self.check_name(name)
        text = await asyncio.to_thread(self.store.read, name)
        if text is None:
            raise workflow_not_found(name)
        return text, await self.plan(text, f"{name}.yaml")

    async def save(self, text: str, name: str | None, replace: bool) -> Plan:
        """Validate and store a definition; `name` (from the URL) must match the one inside."""
        plan = await self.plan(text, f"{name}.yaml" if name else "<request body>")
        stored = plan.workflow.name
        if name is not None and name != stored:
            raise invalid_request(f"The URL names `{name}` but the definition is named `{stored}`.", param="name")
        self.check_name(stored)
        if not replace and self.store.read(stored) is not None:
            raise APIError(409, f"A workflow named `{stored}` exists; PUT it to replace it.", code="workflow_exists")
        await asyncio.to_thread(self.store.write, stored, text)
        return plan

    async def start(self, plan: Plan, inputs: dict[str, Any], priority: int | None = None) -> Run:
        """Start a run of `plan` (400 for inputs that do not fit it) whose model steps are admitted
        at `priority` (None: the workflow's, else each service's)."""
        try:
            bound, documents = bind_inputs(plan.workflow, inputs)
            for name in documents:
                bound[name] = await self._document_text(name, bound[name])
        except InputError as exc:
            raise invalid_request(str(exc), param=exc.param, code="invalid_input") from exc
        run = Run(plan, bound, self.gateway, self.defaults, priority, jobs=self.jobs, settings=self.settings)
        self.active[run.id] = run
        return run

    async def _document_text(self, name: str, file: FileInput) -> str:
        """The text of an uploaded document given for a text input (InputError if unreadable)."""
        try:
            text: str = await self.jobs.run("extract", file, self.settings)
        except (StepFailed, JobFailed) as exc:
            raise InputError(f"input `{name}`: {exc}", f"inputs.{name}") from exc
        return text

    def launch(self, run: Run) -> None:
        """Begin `run`, and keep its record once it ends."""
        run.start()
        task = asyncio.create_task(self._keep(run))
        self._finishers.add(task)
        task.add_done_callback(self._finishers.discard)

    async def _keep(self, run: Run) -> None:
        record = await run.wait()
        try:
            await asyncio.to_thread(self.store.save_run, record)
        except OSError as exc:
            log.error("cannot keep the record of %s: %s", run.id, exc)
        self.active.pop(run.id, None)

    async def record(self, workflow: str, run_id: str) -> RunRecord:
        """A run's record, live while it runs (404 if unknown)."""
        run = self.active.get(run_id)
        record = run.record if run is not None else await asyncio.to_thread(self.store.load_run, run_id)
        if record is None or record.workflow != workflow:
            raise APIError(404, f"No run `{run_id}` of workflow `{workflow}`.", param="run_id", code="run_not_found")
        return record

    async def runs(self, workflow: str, limit: int) -> list[RunRecord]:
        """Runs of `workflow`, those in flight first, then the newest finished ones."""
        active = [run.record for run in self.active.values() if run.record.workflow == workflow]
        active.sort(key=lambda r: r.created_at, reverse=True)
        finished = await asyncio.to_thread(self.store.recent_runs, workflow, limit)
        seen = {r.id for r in active}
        return [*active, *(r for r in finished if r.id not in seen)][:limit]

    async def cancel(self, workflow: str, run_id: str) -> RunRecord:
        """Cancel a run in flight and return its record (a finished run's record is returned as is)."""
        record = await self.record(workflow, run_id)
        run = self.active.get(run_id)
        if run is not None and run.cancel():
            return await run.wait()
        return record

    async def close(self) -> None:
        """Cancel every run in flight and keep their records; stop the job processes."""
        for run in list(self.active.values()):
            run.cancel()
        await asyncio.gather(*self._finishers, return_exceptions=True)
        await self.jobs.close()


def workflows_lifespan(settings: Settings) -> Callable[[Litestar], AbstractAsyncContextManager[None]]:
    """The lifespan hook that builds the app's `WorkflowManager` (after the engines' lifespan)."""

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        gateway = gateway_for(app.state)
        limits = settings.workflows
        store = WorkflowStore(settings.home_path, limits.workflow_runs_kept, limits.workflow_runs_max_bytes)
        jobs = JobPool(limits)
        if store.names():
            # Workflows are in use here: start the job processes now, so the first run does not
            # wait for their imports. Otherwise they start with the first job, and a server that
            # never runs a workflow spends neither their start-up (~1 CPU-s each) nor their memory.
            await jobs.start()
        service = WorkflowManager(store, gateway, settings.sampling_defaults(), limits, jobs)
        app.state.workflows = service
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                await service.close()

    return lifespan
