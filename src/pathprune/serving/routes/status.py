"""``/health``, ``/v1/models`` and Prometheus ``/metrics``."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from ..service import Service, service_of

router = APIRouter()


@router.get("/health")
async def health(service: Service = Depends(service_of)):
    ok = service.scheduler.alive
    return JSONResponse({"status": "ok" if ok else "down", "model": service.config.name,
                         "queue_depth": service.scheduler.depth}, status_code=200 if ok else 503)


@router.get("/v1/models")
async def models(service: Service = Depends(service_of)):
    config = service.config
    served = [config.name] + ([config.stop_name] if service.runner.stop_module is not None else [])
    return {"object": "list", "data": [{"id": name, "object": "model", "created": 0, "owned_by": "pathprune"}
                                       for name in served]}


@router.get("/metrics")
async def prometheus(service: Service = Depends(service_of)):
    return Response(service.metrics.render(), media_type=CONTENT_TYPE_LATEST)
