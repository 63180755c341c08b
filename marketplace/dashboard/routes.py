"""Dashboard pages, its static files, and the few JSON views the API does not have."""

from __future__ import annotations

import logging
import mimetypes
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from marketplace.api.deps import ServiceDep
from marketplace.dashboard import assets, rpc
from marketplace.energy import region_levels
from marketplace.energy.sources import floor_hour
from marketplace.errors import NotFoundError, UnavailableError
from marketplace.service import Service
from marketplace.services import catalog, names
from protocol.leases import MIN_PREPAID_SECONDS
from protocol.reverts import browser_catalogue

logger = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
templates = Jinja2Templates(directory=HERE / "templates")

router = APIRouter(prefix="/dashboard", include_in_schema=False)
router.include_router(rpc.router)

# Contracts whose address and ABI the browser needs.
BROWSER_CONTRACTS = ("ComputeToken", "JobEscrow", "LeaseEscrow", "DevFaucet")
STORAGE_PREFIX = "/v1/storage"
MEDIA_TYPES = {".js": "text/javascript", ".css": "text/css", ".json": "application/json"}
PAGES = {
    "jobs": "Your jobs",
    "submit": "Submit a job",
    "services": "Services",
    "providers": "Providers map",
    "storage": "Storage files",
}


def storage_available(request: Request) -> bool:
    """Whether this marketplace serves the storage API (its operations in the OpenAPI)."""
    paths: dict[str, object] = request.app.openapi().get("paths", {})
    return any(path.startswith(STORAGE_PREFIX) for path in paths)


def _page(request: Request, name: str, **extra: Any) -> HTMLResponse:
    return templates.TemplateResponse(
        request,
        f"{name}.html",
        {"page": name, "title": PAGES.get(name, "Job"), "pages": PAGES, **extra},
    )


@router.get("", response_class=RedirectResponse)
def home() -> RedirectResponse:
    return RedirectResponse("/dashboard/jobs")


@router.get("/jobs", response_class=HTMLResponse)
def jobs_page(request: Request) -> HTMLResponse:
    return _page(request, "jobs")


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
def job_page(request: Request, job_id: str) -> HTMLResponse:
    return _page(request, "job", job_id=job_id)


@router.get("/submit", response_class=HTMLResponse)
def submit_page(request: Request) -> HTMLResponse:
    return _page(request, "submit")


@router.get("/services", response_class=HTMLResponse)
def services_page(request: Request) -> HTMLResponse:
    return _page(request, "services")


@router.get("/providers", response_class=HTMLResponse)
def providers_page(request: Request) -> HTMLResponse:
    return _page(request, "providers")


@router.get("/storage", response_class=HTMLResponse)
def storage_page(request: Request) -> HTMLResponse:
    return _page(request, "storage", storage=storage_available(request))


@router.get("/static/{path:path}")
def static(path: str) -> FileResponse:
    """The dashboard's own files and the vendor copies (see ``assets``)."""
    target = (STATIC / path).resolve()
    if not target.is_relative_to(STATIC) or not target.is_file() or target.name.startswith("."):
        if path.startswith("vendor/") and assets.missing():
            raise UnavailableError(
                "the dashboard's front-end packages are not installed: run tools/setup.sh"
            )
        raise NotFoundError(f"no dashboard file {path}")
    media = MEDIA_TYPES.get(target.suffix) or mimetypes.guess_type(target.name)[0]
    return FileResponse(target, media_type=media, headers={"Cache-Control": "no-cache"})


@router.get("/api/config")
def config(request: Request, service: ServiceDep) -> JSONResponse:
    """What the browser needs to talk to the chain (chain id, contracts, escrow windows)
    and to reach services (the ingress gateway's URL and domain, a lease's least prepaid
    seconds)."""
    chain: dict[str, Any] | None = None
    if service.chain is not None:
        deployment = service.chain.deployment
        devnet = rpc.devnet_chain_id(service) is not None
        chain = {
            "chain_id": deployment.chain_id,
            "devnet": devnet,
            "rpc_proxy": "/dashboard/api/rpc" if devnet else None,
            "contracts": {
                name: {"address": info.address, "abi": info.abi}
                for name, info in deployment.contracts.items()
                if name in BROWSER_CONTRACTS
            },
            "parameters": _escrow_parameters(service),
        }
    return JSONResponse(
        {
            "chain": chain,
            "storage": storage_available(request),
            "offline_after_s": service.settings.offline_after_s,
            "energy_weight_km": service.settings.energy_weight_km,
            "services": {
                "min_prepaid_s": MIN_PREPAID_SECONDS,
                "gateway_url": service.settings.service_gateway_url,
                "apps_domain": service.settings.service_apps_domain,
            },
            # the CLI's sentences for contract errors, so the page says the same
            "reverts": browser_catalogue(),
        }
    )


@router.get("/api/names/{name}")
def name_owner(name: str, service: ServiceDep) -> JSONResponse:
    """Who owns service name `name` (null: nobody yet) and its live deployment if any, so
    the deploy form can refuse a taken name before anything is signed."""
    with service.sessions() as session:
        owner = names.owner_of(session, name)
        row = catalog.live(session, name) if owner is not None else None
        live = {"status": row.status, "lease_id": row.lease_id} if row is not None else None
    return JSONResponse(
        {"name": name, "owner": owner, "reserved": name in names.RESERVED, "live": live}
    )


_params_lock = threading.Lock()
_params_cache: dict[tuple[int, str], dict[str, int]] = {}


def _escrow_parameters(service: Service) -> dict[str, int]:
    """The escrow's windows as the chain reports them (the deployment file as fallback)."""
    chain = service.chain
    assert chain is not None
    key = (chain.deployment.chain_id, chain.escrow.address)
    with _params_lock:
        cached = _params_cache.get(key)
        if cached is not None:
            return cached
        try:
            values = chain.escrow.functions.parameters().call()
        except Exception as exc:  # the node may be away for a moment; do not cache that
            logger.warning("escrow parameters unavailable from the chain: %s", exc)
            keys = ("fee_bps", "accept_window", "reveal_window", "challenge_window")
            return {k: v for k, v in chain.deployment.parameters.items() if k in keys}
        params = {
            "fee_bps": int(values[3]),
            "accept_window": int(values[4]),
            "reveal_window": int(values[5]),
            "challenge_window": int(values[6]),
            "collateral_bps": int(values[7]),
        }
        _params_cache[key] = params
        return params


_history_lock = threading.Lock()
_history_cache: dict[tuple[datetime, int], list[dict[str, Any]]] = {}


@router.get("/api/regions/history")
async def region_history(
    service: ServiceDep, hours: Annotated[int, Query(ge=1, le=168)] = 24
) -> JSONResponse:
    """Each region's hourly price and energy level over the last `hours` hours."""
    return JSONResponse(await run_in_threadpool(_history, service, hours))


@router.get("/api/regions/ahead")
async def region_ahead(
    service: ServiceDep, hours: Annotated[int, Query(ge=1, le=48)] = 12
) -> JSONResponse:
    """Each region's energy level for the next `hours` hours from this one (fewer when the
    price source does not know that far ahead)."""
    return JSONResponse(await run_in_threadpool(_ahead, service, hours))


def _ahead(service: Service, hours: int) -> dict[str, Any]:
    now = floor_hour(datetime.now(UTC))
    ahead = service.grid.levels_ahead(hours, now)
    return {
        "start": int(now.timestamp()),
        "basis": service.grid.basis.kind,
        "regions": [
            {"id": r.id, "levels": [lv[r.id] for lv in ahead]} for r in service.grid.regions()
        ],
    }


def _history(service: Service, hours: int) -> list[dict[str, Any]]:
    now = floor_hour(datetime.now(UTC))
    with _history_lock:
        cached = _history_cache.get((now, hours))
        if cached is not None:
            return cached
        source = service.grid.source
        stamps = [now - timedelta(hours=k) for k in range(hours - 1, -1, -1)]
        levels = [region_levels(source, t, basis=service.grid.basis) for t in stamps]
        out = [
            {
                "id": region.id,
                "name": region.name,
                "points": [
                    {
                        "t": int(t.timestamp()),
                        "price": round(source.price(region.id, t).price, 3),
                        "level": lv[region.id],
                    }
                    for t, lv in zip(stamps, levels, strict=True)
                ],
            }
            for region in source.regions()
        ]
        _history_cache.clear()
        _history_cache[(now, hours)] = out
        return out
