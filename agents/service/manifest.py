"""Deployments of several containers, written as a manifest (a small YAML subset in the
spirit of docker compose) and turned into one :class:`~protocol.services.ServiceSpec`.

::

    name: shop                    # the public name (``--name`` overrides it)
    network: false                # outbound connections (the provider must allow them)
    services:
      web:
        image: dcloud/python:3.11
        command: python3 /input/web.py      # a list, or a string split as a shell would
        ports: [8000]             # the one port published at NAME.apps.<domain>
        env: {API_URL: "http://api:9000"}   # a mapping, or a list of KEY=VALUE
        depends_on: [api]         # started after api (not waiting for it to be healthy)
        resources: {cpu: 0.5, memory_mb: 128, disk_mb: 16}
        health: {path: /healthz}  # the published service's check (or {kind: tcp})
      api:
        image: dcloud/python:3.11
        command: [python3, -m, http.server, "9000"]
        resources: {cpu: 0.25, memory_mb: 64}

The containers run together on one provider under one lease, on a private network where
each reaches the others by its service name; only the published port gets a public name.
The service that publishes it is the deployment's main container; the spec's resources
are the sum of every service's (so the deployment is placed whole or not at all), and the
``disk_mb`` of all of them make one ``/data`` area where each container has a folder.
Unknown keys are refused; every error names the file's line and the key, and says how to
fix it.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
)

from agents.errors import UserError
from agents.image.records import ImageStore
from agents.service.manifest_yaml import error_line, load_yaml
from protocol.schemas import ImageName, Location
from protocol.services import (
    MAX_CONTAINERS,
    ContainerName,
    HealthCheck,
    ServiceName,
    ServiceSpec,
)

EnvValue = str | int | float | bool
EnvKey = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z_]\w*$")]
PORTS_RULE = (
    "publish exactly one port, the one people reach at NAME.apps.<domain>: add "
    "`ports: [PORT]` to that service (the others reach each other on their private network "
    "by service name, on any port, without publishing)"
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ManifestResources(_Strict):
    cpu: float = Field(default=0.25, gt=0, le=4096)
    memory_mb: int = Field(default=128, gt=0, le=2**40)
    gpu: int = Field(default=0, ge=0, le=1024)
    disk_mb: int = Field(default=0, ge=0, le=2**50)


class ManifestService(_Strict):
    image: ImageName
    command: list[str] | str = Field(default_factory=list)
    ports: list[int | str] = Field(default_factory=list, max_length=1)
    env: dict[EnvKey, EnvValue] = Field(default_factory=dict)
    depends_on: list[ContainerName] = Field(default_factory=list)
    resources: ManifestResources = Field(default_factory=ManifestResources)
    health: HealthCheck | None = None

    @field_validator("env", mode="before")
    @classmethod
    def _env_list(cls, env: object) -> object:
        if not isinstance(env, list):
            return env
        out: dict[str, object] = {}
        for item in env:
            key, sep, value = str(item).partition("=")
            if not sep:
                raise ValueError(f"{item!r} is not KEY=VALUE")
            out[key] = value
        return out

    @field_validator("ports")
    @classmethod
    def _container_ports(cls, ports: list[int | str]) -> list[int | str]:
        out: list[int | str] = []
        for p in ports:
            text = str(p).removesuffix("/tcp")
            if ":" in text:
                raise ValueError(
                    f"{p!r}: the provider picks the host port; write the container's port "
                    f"only ({text.rsplit(':', 1)[-1]})"
                )
            if not text.isdigit() or not 1 <= int(text) <= 65535:
                raise ValueError(f"{p!r} is not a port; write a number from 1 to 65535")
            out.append(int(text))
        return out

    def argv(self) -> list[str]:
        return shlex.split(self.command) if isinstance(self.command, str) else self.command

    def environment(self) -> dict[str, str]:
        return {k: _env_text(v) for k, v in self.env.items()}


class Manifest(_Strict):
    name: ServiceName | None = None
    network: bool = False
    services: Annotated[
        dict[ContainerName, ManifestService], Field(min_length=1, max_length=MAX_CONTAINERS + 1)
    ]

    def published(self) -> tuple[str, int]:
        """The service whose port is published, and the port."""
        found = [(n, int(s.ports[0])) for n, s in self.services.items() if s.ports]
        if len(found) != 1:
            named = ", ".join(n for n, _ in found)
            raise ValueError(f"{PORTS_RULE}" + (f"; now {named} publish one each" if named else ""))
        return found[0]


def load(path: Path) -> Manifest:
    """Read and check the manifest at `path`.

    Raises:
        UserError: it cannot be read, is not YAML, or breaks a rule (line, key, fix).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot read the manifest {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise UserError(f"the manifest {path} is not UTF-8 text") from None
    data, root = load_yaml(text, str(path))
    if not isinstance(data, dict):
        raise UserError(f"{path}: a manifest is a mapping with `services:` (see --help)")
    try:
        return Manifest.model_validate(data)
    except ValidationError as exc:
        lines = [_where(path, root, e) for e in exc.errors()]
        raise UserError(f"the manifest {path} is not valid:\n" + "\n".join(lines)) from None


def spec_fields(manifest: Manifest, *, path: Path) -> dict[str, Any]:
    """The :class:`ServiceSpec` fields the manifest gives (all but name, max rate, origin,
    inputs): the published service is the main container, the others its ``containers``.

    Raises:
        UserError: no port or more than one is published, or health is set on a service
            that publishes none.
    """
    try:
        main, port = manifest.published()
    except ValueError as exc:
        raise UserError(f"{path}: {exc}") from None
    for name, s in manifest.services.items():
        if s.health is not None and name != main:
            raise UserError(
                f"{path}: services.{name}.health: only the published service ({main}) is "
                "checked; remove it (its container is restarted when it exits)"
            )
    top = manifest.services[main]
    others = {n: s for n, s in manifest.services.items() if n != main}
    every = list(manifest.services.values())
    fields: dict[str, Any] = {
        "image": top.image,
        "command": top.argv(),
        "env": top.environment(),
        "port": port,
        "health": (top.health or HealthCheck()).model_dump(),
        "resources": {
            "cpu": round(sum(s.resources.cpu for s in every), 6),
            "memory_mb": sum(s.resources.memory_mb for s in every),
            "gpu": sum(s.resources.gpu for s in every),
            "disk_mb": sum(s.resources.disk_mb for s in every),
        },
        "network": manifest.network,
    }
    if others:
        fields["alias"], fields["depends_on"] = main, top.depends_on
        fields["containers"] = [
            {
                "name": n,
                "image": s.image,
                "command": s.argv(),
                "env": s.environment(),
                "resources": s.resources.model_dump(),
                "depends_on": s.depends_on,
            }
            for n, s in others.items()
        ]
    elif top.depends_on:
        raise UserError(f"{path}: services.{main}.depends_on names services the file lacks")
    return fields


def build(
    path: Path,
    *,
    name: str,
    max_rate_wei_per_s: int,
    origin: Location,
    inputs: list[dict[str, Any]],
    network: bool = False,
    images: ImageStore | None = None,
) -> ServiceSpec:
    """The spec of the deployment the manifest at `path` describes; `name` ('' for the
    manifest's own) names it; `network` gives it outbound network as the manifest can.
    With the renter's `images`, an image it pushed is named pinned to its digest (see
    :func:`pin_images`).

    Raises:
        UserError: the manifest is not valid, names no deployment name, or its services do
            not make a deployment (a depends_on that goes round, say).
    """
    manifest = load(path)
    name = name or manifest.name or ""
    if not name:
        raise UserError(f"{path}: name the deployment: `name: NAME` in the file, or --name")
    fields = spec_fields(manifest, path=path)
    if images is not None:
        pin_images(images, fields, path=path)
    body = {
        **fields,
        "name": name,
        "max_rate_wei_per_s": max_rate_wei_per_s,
        "origin": origin.model_dump(),
        "inputs": inputs,
        "network": fields["network"] or network,
    }
    try:
        return ServiceSpec.model_validate(body)
    except ValidationError as exc:
        why = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
        raise UserError(f"{path}: the services do not make a deployment: {why}") from None


def pin_images(images: ImageStore, fields: dict[str, Any], *, path: Path) -> None:
    """Name the renter's own images in `fields` pinned to their digests (the published
    container's with its size). Only the published container's image is fetched by the
    provider, so another container may run that same image, or one providers offer.

    Raises:
        UserError: another container names a different image the renter pushed.
    """
    main, size = images.resolve(fields["image"])
    fields["image"], fields["image_bytes"] = main, size
    for c in fields.get("containers", []):
        image, _ = images.resolve(c["image"])
        if image != c["image"] or "@" in image:  # one the renter pushed
            if image != main:
                raise UserError(
                    f"{path}: services.{c['name']}.image: {c['image']} is an image you pushed; "
                    "the provider fetches only the published service's, so run that same "
                    "image here or one providers offer"
                )
            c["image"] = image


def _env_text(value: EnvValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


_KEYS: dict[int, type[BaseModel]] = {1: Manifest, 3: ManifestService}
_NESTED: dict[str, type[BaseModel]] = {"resources": ManifestResources, "health": HealthCheck}


def _where(path: Path, root: yaml.Node | None, error: Any) -> str:
    """One line for a validation error: the file's line, the key, and what to do."""
    loc = tuple(error["loc"])
    keys = [str(p) for p in loc if not _is_union_tag(p)]
    line = error_line(root, loc)
    at = f"{path}" + (f" line {line}" if line else "")
    msg = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        model = _NESTED.get(keys[-2]) if len(keys) >= 2 else None
        model = model or _KEYS.get(len(keys), Manifest)
        msg = f"unknown key; use one of: {', '.join(model.model_fields)}"
    elif error["type"] == "missing":
        msg = "required; add it"
    elif error["type"] == "string_pattern_mismatch" and "a-z0-9" in str(error.get("ctx")):
        msg = f"{error['input']!r} is not a name: use lower case letters, digits and inner hyphens"
    elif error["type"] == "string_pattern_mismatch" and "A-Za-z_" in str(error.get("ctx")):
        msg = f"{error['input']!r} is not a variable name: letters, digits and _, no digit first"
    return f"  {at}, {'.'.join(keys) or 'manifest'}: {msg}"


def _is_union_tag(part: object) -> bool:
    """pydantic names the member of a union it tried in `loc` ('list[str]', 'str')."""
    return isinstance(part, str) and (part in ("str", "int", "float", "bool") or "[" in part)
