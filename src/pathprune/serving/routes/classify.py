"""STOP's ``/classify`` (the official server's route, also under ``/v1``): p(success) of given prefixes."""

from __future__ import annotations

import time
import uuid

from fastapi import APIRouter, Depends, Request

from ...errors import PathpruneError
from ..scheduler import CLASSIFY
from ..schemas import ClassifyRequest
from ..service import Service, service_of

router = APIRouter()


@router.post("/classify")
@router.post("/v1/classify")
async def classify(body: ClassifyRequest, request: Request, service: Service = Depends(service_of)):
    config, runner = service.config, service.runner
    service.check_model(body.model, {config.stop_name})
    if len(body.input) > config.max_classify_inputs:
        raise PathpruneError(f"at most {config.max_classify_inputs} inputs per request, got {len(body.input)}",
                             parameter="input")
    work = runner.prepare_classify(body.input, body.assess_tail_len, body.truncate_prompt_tokens)
    job = service.scheduler.submit(CLASSIFY, work, rows=len(work.prefixes))
    probs = await service.wait(job, request, config.request_timeout)
    read = sum(len(p) + runner.n_stop for p in work.prefixes)
    return {"id": f"classify-{uuid.uuid4().hex}", "object": "list", "created": int(time.time()),
            "model": body.model,
            "data": [{"index": i, "probs": [1.0 - p, p], "num_classes": 2} for i, p in enumerate(probs)],
            "usage": {"prompt_tokens": read, "total_tokens": read}}
