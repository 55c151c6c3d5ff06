"""A service's engine settings as the console's Tuning page edits them (PUT
/v1/services/{name}/tuning), and the deployment they make. Applying them reloads the service
(server/serving/scheduler.py `retune`); they last until the server restarts (the services file and
flags stay what they were)."""

from __future__ import annotations

import dataclasses
import math
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from adapters.limits import model_limits, served_context
from server.serving.deployments import Deployment, estimate_bytes
from server.serving.status import ModelStatus


class Tuning(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The engine settings that matter most for speed and memory, and how the scheduler keeps it."""

    threads: Annotated[int, Meta(ge=0, le=1024, description="inference threads (0: all cores)")]
    kv_cache_gb: Annotated[float, Meta(gt=0, le=1024, description="memory for the KV cache in GB")]
    kv_cache_precision: Literal["u8", "f16", "f32"]
    max_num_seqs: Annotated[int, Meta(ge=1, le=1024, description="most sequences batched at once")]
    context_length: Annotated[int, Meta(ge=0, description="cap on the context window (0: the model's)")]
    inference_precision: Literal["", "f32", "f16", "bf16"]
    # None: kept loaded forever.
    keep_alive_seconds: Annotated[float, Meta(ge=0)] | None
    priority: Annotated[int, Meta(ge=-1000, le=1000)]


class Tuned(msgspec.Struct, kw_only=True):
    """A service's settings and its status after they were applied."""

    id: str
    tuning: Tuning
    status: ModelStatus
    object: Literal["service.tuning"] = "service.tuning"


def tuning_of(deployment: Deployment) -> Tuning:
    """The settings `deployment` runs with."""
    options = deployment.options
    # Values the form does not offer (set by flags or a services file) show as the default.
    kv = options.kv_cache_precision
    precision = options.inference_precision
    kv_cache_precision: Literal["u8", "f16", "f32"] = "f16" if kv == "f16" else "f32" if kv == "f32" else "u8"
    inference: Literal["", "f32", "f16", "bf16"] = (
        "f32" if precision == "f32" else "f16" if precision == "f16" else "bf16" if precision == "bf16" else ""
    )
    return Tuning(
        threads=options.threads,
        kv_cache_gb=options.kv_cache_gb,
        kv_cache_precision=kv_cache_precision,
        max_num_seqs=options.max_num_seqs,
        context_length=options.context_length,
        inference_precision=inference,
        keep_alive_seconds=None if math.isinf(deployment.keep_alive_s) else deployment.keep_alive_s,
        priority=deployment.service.priority,
    )


def retuned(deployment: Deployment, tuning: Tuning) -> Deployment:
    """`deployment` with `tuning` applied (its memory estimate and context recomputed)."""
    options = msgspec.structs.replace(
        deployment.options,
        threads=tuning.threads,
        kv_cache_gb=tuning.kv_cache_gb,
        kv_cache_precision=tuning.kv_cache_precision,
        max_num_seqs=tuning.max_num_seqs,
        context_length=tuning.context_length,
        inference_precision=tuning.inference_precision,
    )
    return dataclasses.replace(
        deployment,
        service=msgspec.structs.replace(deployment.service, priority=tuning.priority),
        options=options,
        keep_alive_s=math.inf if tuning.keep_alive_seconds is None else tuning.keep_alive_seconds,
        estimated_bytes=estimate_bytes(deployment.spec, options),
        context_length=served_context(model_limits(deployment.spec), deployment.spec, options),
    )
