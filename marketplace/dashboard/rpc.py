"""A JSON-RPC pass-through to the configured chain, for local devnets only.

On a devnet (chain id 31337 or 1337) the dashboard lets a renter act as one of the chain's
unlocked dev accounts: the browser asks for ``eth_accounts`` and has the node sign
(``personal_sign``) and send (``eth_sendTransaction``) for them. Browsers cannot reach the
node's port directly (another origin, no CORS), so this route forwards those calls. It
exists only on devnet chain ids and forwards only the methods in :data:`ALLOWED`; anything
else is answered with a JSON-RPC error, never forwarded.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from marketplace.api.deps import ServiceDep
from marketplace.errors import InvalidInputError, NotFoundError

logger = logging.getLogger(__name__)

router = APIRouter()

DEVNET_CHAIN_IDS = frozenset({31337, 1337})
ALLOWED = frozenset(
    {
        "eth_chainId",
        "net_version",
        "eth_blockNumber",
        "eth_accounts",
        "eth_getBalance",
        "eth_getCode",
        "eth_call",
        "eth_estimateGas",
        "eth_gasPrice",
        "eth_maxPriorityFeePerGas",
        "eth_feeHistory",
        "eth_getBlockByNumber",
        "eth_getBlockByHash",
        "eth_getTransactionByHash",
        "eth_getTransactionReceipt",
        "eth_getTransactionCount",
        "eth_getLogs",
        "eth_sendTransaction",
        "personal_sign",
        "eth_signTypedData_v4",
    }
)
MAX_BATCH = 50
# A job push carries its inputs (up to 64 MiB, base64) inside the signed message, which
# personal_sign receives hex-encoded: about 4x the inputs' size.
MAX_BODY_BYTES = 320 * 2**20
UPSTREAM_TIMEOUT_S = 60.0


def devnet_chain_id(service: ServiceDep) -> int | None:
    """The chain id when the marketplace follows a local devnet, else None."""
    if service.chain is None:
        return None
    chain_id = service.chain.deployment.chain_id
    return chain_id if chain_id in DEVNET_CHAIN_IDS else None


def _refusal(call: Any) -> dict[str, Any] | None:
    """A JSON-RPC error answer for a call that may not be forwarded, else None."""
    call_id = call.get("id") if isinstance(call, dict) else None
    if not isinstance(call, dict) or not isinstance(call.get("method"), str):
        return {
            "jsonrpc": "2.0",
            "id": call_id,
            "error": {"code": -32600, "message": "invalid request"},
        }
    if call["method"] not in ALLOWED:
        return {
            "jsonrpc": "2.0",
            "id": call_id,
            "error": {
                "code": -32601,
                "message": f"method {call['method']} is not forwarded by the dashboard's "
                "devnet proxy",
            },
        }
    return None


@router.post("/api/rpc", include_in_schema=False)
async def rpc(request: Request, service: ServiceDep) -> Response:
    """Forward allowed JSON-RPC calls (single or batch) to the devnet node."""
    if devnet_chain_id(service) is None or service.settings.rpc_url is None:
        raise NotFoundError(
            "the chain proxy exists only when the marketplace follows a local devnet "
            "(chain id 31337 or 1337); connect a browser wallet instead"
        )
    length = int(request.headers.get("content-length") or 0)
    if length > MAX_BODY_BYTES:
        raise InvalidInputError(f"request of {length} bytes; the proxy takes {MAX_BODY_BYTES}")
    try:
        body = json.loads(await request.body())
    except ValueError:
        raise InvalidInputError("the request body is not JSON") from None
    calls = body if isinstance(body, list) else [body]
    if not calls or len(calls) > MAX_BATCH:
        raise InvalidInputError(f"send 1 to {MAX_BATCH} calls per request")
    refusals = [_refusal(c) for c in calls]
    if any(refusals):
        # Answer the whole request without forwarding any of it: a batch is all or nothing.
        answers = [r or _not_run(c) for r, c in zip(refusals, calls, strict=True)]
        return JSONResponse(answers if isinstance(body, list) else answers[0])
    async with httpx.AsyncClient(timeout=UPSTREAM_TIMEOUT_S) as client:
        try:
            upstream = await client.post(service.settings.rpc_url, json=body)
        except httpx.HTTPError as exc:
            logger.warning("devnet proxy: node unreachable: %s", exc)
            return JSONResponse(
                {"detail": f"the chain node does not answer ({type(exc).__name__})"},
                status_code=502,
            )
    return Response(
        upstream.content,
        status_code=upstream.status_code,
        media_type=upstream.headers.get("content-type", "application/json"),
    )


def _not_run(call: Any) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": call.get("id") if isinstance(call, dict) else None,
        "error": {"code": -32600, "message": "not run: another call in the batch was refused"},
    }
