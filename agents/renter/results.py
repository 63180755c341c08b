"""A job's result as the renter downloads it from a provider, and how it is saved.

The renter recomputes the result hash from the files, exit code and logs it received
(``protocol.result_proof``); the caller compares it with the chain.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from agents.errors import NotFoundError, VerificationError
from protocol import result_proof


@dataclass
class Result:
    job_id: int
    result_hash: str
    exit_code: int
    logs: bytes
    files: dict[str, bytes]
    provider: str
    detail: str
    salt: bytes = b""


def download(get: Callable[[str], httpx.Response], *, job_id: int, provider: str) -> Result:
    """Fetch the result of `job_id` through `get` (a signed GET at the provider) and hash it."""
    meta = get(f"/v1/jobs/{job_id}/result").json()
    logs = get(f"/v1/jobs/{job_id}/logs").content
    files = {
        o["path"]: get(f"/v1/jobs/{job_id}/files/{o['path']}").content for o in meta["outputs"]
    }
    if meta.get("exit_code") is None:
        raise NotFoundError("no exit code yet")
    digest = result_proof.result_hash(files, int(meta["exit_code"]), logs)
    return Result(
        job_id=job_id,
        result_hash="0x" + digest.hex(),
        exit_code=int(meta["exit_code"]),
        logs=logs,
        files=files,
        provider=provider,
        detail=str(meta.get("detail", "")),
        salt=bytes.fromhex(str(meta.get("salt") or "").removeprefix("0x")),
    )


def save_result(res: Result, out_dir: Path) -> None:
    """Write outputs under `out_dir`/outputs, plus logs.txt and result.json beside them."""
    base = (out_dir / "outputs").resolve()
    base.mkdir(parents=True, exist_ok=True)
    for path, data in res.files.items():
        target = (base / path).resolve()
        if not target.is_relative_to(base):
            raise VerificationError(f"output path {path!r} escapes the result folder")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    (out_dir / "logs.txt").write_bytes(res.logs)
    (out_dir / "result.json").write_text(
        json.dumps(
            {
                "job_id": res.job_id,
                "result_hash": res.result_hash,
                "exit_code": res.exit_code,
                "provider": res.provider,
                "detail": res.detail,
            },
            indent=2,
        )
    )
