"""A columnar, immutable store of providers, the input of the matching index.

Matching works on numpy columns, not on Python objects: one row per provider, one array
per field, and the images each provider holds as a bitset (one bit per image ever seen,
64 images per uint64 word), so updating a provider's images costs O(1) and testing
candidates is one gather.
Tables are never modified in place (their arrays are read-only): :meth:`with_changes`
returns a new table, so an index snapshot can keep using the old one while a refresh
builds the next.

Removed providers leave a dead row (``present`` false) until more than a quarter of the
rows are dead, when the table is compacted.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, TypeVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from marketplace.errors import InvalidProviderError, InvalidResourcesError
from marketplace.geo import to_xyz_km
from marketplace.matching.records import MAX_PRICE_WEI, Provider, Resources

__all__ = ["ProviderTable"]

logger = logging.getLogger(__name__)

_COLUMNS = ("lat", "lon", "cpu", "memory_mb", "gpu", "disk_mb", "price_wei", "level", "reputation")
_COMPACT_FRACTION = 0.25


_A = TypeVar("_A", bound=np.ndarray[Any, Any])


def _frozen(a: _A) -> _A:
    a.flags.writeable = False
    return a


@dataclass(frozen=True, eq=False)
class ProviderTable:
    """Providers as columns; row ``i`` of every array describes provider ``ids[i]``.

    Attributes:
        ids: Provider ids (object array of str).
        lat, lon: Position in degrees.
        xyz: Position on the Earth sphere in km, shape (n, 3) (see :mod:`marketplace.geo`).
        cpu, memory_mb, gpu, disk_mb: Free capacity.
        price_wei: Asking price, token wei per CPU-core-second.
        level: Energy level.
        reputation: Reliability in [0, 1].
        online: Whether the provider is online.
        present: False for rows of removed providers.
        image_names: Every image seen, in bit order.
        image_bits: Bitsets of shape (words, n): bit ``b`` of word ``w`` of a row is set
            when that provider holds image ``image_names[64 * w + b]``.
        row_of: Row of each present provider id.
    """

    ids: NDArray[np.object_]
    lat: NDArray[np.float64]
    lon: NDArray[np.float64]
    xyz: NDArray[np.float64]
    cpu: NDArray[np.float64]
    memory_mb: NDArray[np.int64]
    gpu: NDArray[np.int64]
    disk_mb: NDArray[np.int64]
    price_wei: NDArray[np.int64]
    level: NDArray[np.int64]
    reputation: NDArray[np.float64]
    online: NDArray[np.bool_]
    present: NDArray[np.bool_]
    image_names: tuple[str, ...]
    image_bits: NDArray[np.uint64]
    row_of: Mapping[str, int]

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    @classmethod
    def empty(cls) -> ProviderTable:
        """A table with no providers."""
        return cls.from_providers(())

    @classmethod
    def from_providers(cls, providers: Iterable[Provider]) -> ProviderTable:
        """Build a table from provider records (ids must be unique)."""
        ps = list(providers)
        holders: dict[str, list[int]] = {}
        for i, p in enumerate(ps):
            for image in p.images:
                holders.setdefault(image, []).append(i)
        return cls.from_arrays(
            ids=[p.id for p in ps],
            lat=[p.lat for p in ps],
            lon=[p.lon for p in ps],
            cpu=[p.free.cpu for p in ps],
            memory_mb=[p.free.memory_mb for p in ps],
            gpu=[p.free.gpu for p in ps],
            disk_mb=[p.free.disk_mb for p in ps],
            price_wei=[p.price_wei for p in ps],
            level=[p.energy_level for p in ps],
            reputation=[p.reputation for p in ps],
            online=[p.online for p in ps],
            holders=holders,
        )

    @classmethod
    def from_arrays(
        cls,
        *,
        ids: Iterable[str],
        lat: ArrayLike,
        lon: ArrayLike,
        cpu: ArrayLike,
        memory_mb: ArrayLike,
        gpu: ArrayLike,
        disk_mb: ArrayLike,
        price_wei: ArrayLike,
        level: ArrayLike,
        reputation: ArrayLike,
        online: ArrayLike,
        holders: Mapping[str, ArrayLike],
        present: ArrayLike | None = None,
    ) -> ProviderTable:
        """Build a table from columns (the fast path for bulk loads).

        ``holders`` maps each image to the rows (any order) of the providers holding it.

        Raises:
            InvalidProviderError: Duplicate ids, mismatched lengths or out-of-range values.
            InvalidLocationError: A position is out of range.
        """
        id_list = [str(i) for i in ids]
        n = len(id_list)
        id_arr: NDArray[np.object_] = np.empty(n, dtype=object)
        id_arr[:] = id_list
        cols = {
            "lat": np.asarray(lat, dtype=np.float64),
            "lon": np.asarray(lon, dtype=np.float64),
            "cpu": np.asarray(cpu, dtype=np.float64),
            "memory_mb": np.asarray(memory_mb, dtype=np.int64),
            "gpu": np.asarray(gpu, dtype=np.int64),
            "disk_mb": np.asarray(disk_mb, dtype=np.int64),
            "price_wei": np.asarray(price_wei, dtype=np.int64),
            "level": np.asarray(level, dtype=np.int64),
            "reputation": np.asarray(reputation, dtype=np.float64),
        }
        for name, col in cols.items():
            if col.shape != (n,):
                raise InvalidProviderError(f"{name} has shape {col.shape}; expected ({n},)")
        on = np.asarray(online, dtype=np.bool_)
        alive = np.ones(n, dtype=np.bool_) if present is None else np.asarray(present, np.bool_)
        _validate(cols)
        row_of = {pid: i for i, pid in enumerate(id_list) if alive[i]}
        if len(row_of) != int(alive.sum()):
            raise InvalidProviderError("provider ids are not unique; merge duplicate heartbeats")
        names = tuple(holders)
        bits = np.zeros((_words(len(names)), n), dtype=np.uint64)
        for b, image in enumerate(names):
            r = np.asarray(holders[image], dtype=np.int64)
            if r.size and (r.min() < 0 or r.max() >= n):
                raise InvalidProviderError(f"holders of {image!r} name rows outside 0..{n - 1}")
            bits[b // 64, r[alive[r]]] |= np.uint64(1 << (b % 64))
        return cls(
            ids=_frozen(id_arr),
            xyz=_frozen(to_xyz_km(cols["lat"], cols["lon"])),
            online=_frozen(on & alive),
            present=_frozen(alive),
            image_names=names,
            image_bits=_frozen(bits),
            row_of=row_of,
            **{k: _frozen(v) for k, v in cols.items()},  # type: ignore[arg-type]
        )

    @property
    def image_index(self) -> Mapping[str, int]:
        """Bit number of each image."""
        return _image_index(self.image_names)

    def images_of(self, row: int) -> frozenset[str]:
        """The images held by the provider in ``row``."""
        return frozenset(
            name
            for b, name in enumerate(self.image_names)
            if int(self.image_bits[b // 64, row]) >> (b % 64) & 1
        )

    def image_mask(self, image: str) -> NDArray[np.bool_]:
        """Which rows hold ``image`` (all false for an image nobody holds)."""
        b = self.image_index.get(image)
        if b is None:
            return np.zeros(len(self), dtype=np.bool_)
        return np.asarray((self.image_bits[b // 64] >> np.uint64(b % 64)) & np.uint64(1) == 1)

    def provider(self, provider_id: str) -> Provider:
        """The provider record of ``provider_id`` (mostly for tests and debugging)."""
        row = self.row_of.get(provider_id)
        if row is None:
            raise InvalidProviderError(f"no provider {provider_id!r} in the table")
        return Provider(
            id=provider_id,
            lat=float(self.lat[row]),
            lon=float(self.lon[row]),
            free=Resources(
                cpu=float(self.cpu[row]),
                memory_mb=int(self.memory_mb[row]),
                gpu=int(self.gpu[row]),
                disk_mb=int(self.disk_mb[row]),
            ),
            price_wei=int(self.price_wei[row]),
            images=self.images_of(row),
            online=bool(self.online[row]),
            energy_level=int(self.level[row]),
            reputation=float(self.reputation[row]),
        )

    def with_levels(self, level: ArrayLike) -> ProviderTable:
        """A copy with every row's energy level replaced (the hourly update)."""
        lv = np.asarray(level, dtype=np.int64)
        if lv.shape != self.level.shape:
            raise InvalidProviderError(f"level has shape {lv.shape}; expected {self.level.shape}")
        if lv.size and lv.min() < 0:
            raise InvalidProviderError("energy levels must be >= 0")
        return _replace(self, level=_frozen(lv.copy()))

    def with_changes(
        self, changed: Iterable[Provider] = (), removed: Iterable[str] = ()
    ) -> ProviderTable:
        """A new table with ``changed`` providers upserted and ``removed`` ids dropped.

        Raises:
            InvalidProviderError: An id appears twice, or in both ``changed`` and ``removed``.
        """
        ch = list(changed)
        rm = list(removed)
        ids = [p.id for p in ch]
        if len(set(ids)) != len(ids) or set(ids) & set(rm) or len(set(rm)) != len(rm):
            raise InvalidProviderError("an id is repeated in one change set; send it once")
        new_ids = [p.id for p in ch if p.id not in self.row_of]
        n0, n1 = len(self), len(self) + len(new_ids)
        # The mapping is shared between tables: copy it only when ids come or go.
        row_of = dict(self.row_of) if new_ids or rm else self.row_of
        for k, pid in enumerate(new_ids):
            row_of[pid] = n0 + k  # type: ignore[index]
        cols = {name: _grown(getattr(self, name), n1) for name in _COLUMNS}
        if new_ids:
            id_arr = _grown(self.ids, n1)
            id_arr[n0:] = new_ids
        else:
            id_arr = self.ids  # immutable: share it (copying a million strings holds the GIL)
        online = _grown(self.online, n1)
        present = _grown(self.present, n1)
        rows = np.array([row_of[p.id] for p in ch], dtype=np.int64)
        gone = np.array([row_of.pop(pid) for pid in rm if pid in row_of], dtype=np.int64)  # type: ignore[attr-defined]
        if ch:
            values = {
                "lat": [p.lat for p in ch],
                "lon": [p.lon for p in ch],
                "cpu": [p.free.cpu for p in ch],
                "memory_mb": [p.free.memory_mb for p in ch],
                "gpu": [p.free.gpu for p in ch],
                "disk_mb": [p.free.disk_mb for p in ch],
                "price_wei": [p.price_wei for p in ch],
                "level": [p.energy_level for p in ch],
                "reputation": [p.reputation for p in ch],
            }
            for name, vals in values.items():
                cols[name][rows] = vals
            online[rows] = [p.online for p in ch]
            present[rows] = True
        online[gone] = False
        present[gone] = False
        names, bits = _updated_bits(self, ch, rows, gone, n1)
        xyz = np.empty((n1, 3), dtype=np.float64)
        xyz[:n0] = self.xyz
        if ch:
            xyz[rows] = to_xyz_km(cols["lat"][rows], cols["lon"][rows])
        table = ProviderTable(
            ids=id_arr if id_arr is self.ids else _frozen(id_arr),
            xyz=_frozen(xyz),
            online=_frozen(online),
            present=_frozen(present),
            image_names=names,
            image_bits=_frozen(bits),
            row_of=row_of,
            **{k: _frozen(v) for k, v in cols.items()},
        )
        dead = n1 - len(row_of)
        if n1 > 64 and dead > _COMPACT_FRACTION * n1:
            table = table.compacted()
        return table

    def compacted(self) -> ProviderTable:
        """A copy without the rows of removed providers."""
        keep = np.flatnonzero(self.present)
        logger.debug("compacting provider table: %d -> %d rows", len(self), keep.shape[0])
        return ProviderTable.from_arrays(
            ids=self.ids[keep],
            online=self.online[keep],
            holders={
                name: np.flatnonzero(self.image_mask(name)[keep]) for name in self.image_names
            },
            **{name: getattr(self, name)[keep] for name in _COLUMNS},
        )


def _validate(cols: Mapping[str, NDArray[np.generic]]) -> None:
    # Positions are validated by to_xyz_km.
    cpu = cols["cpu"]
    if cpu.size and not (np.isfinite(cpu).all() and cpu.min() >= 0):
        raise InvalidResourcesError("cpu must be finite and >= 0 for every provider")
    for name in ("memory_mb", "gpu", "disk_mb", "level"):
        col = cols[name]
        if col.size and col.min() < 0:
            raise InvalidResourcesError(f"{name} must be >= 0 for every provider")
    price = cols["price_wei"]
    if price.size and (price.min() < 0 or price.max() > MAX_PRICE_WEI):
        raise InvalidProviderError(f"price_wei must lie in 0 .. {MAX_PRICE_WEI}")
    rep = cols["reputation"]
    if rep.size and not (np.isfinite(rep).all() and rep.min() >= 0 and rep.max() <= 1):
        raise InvalidProviderError("reputation must lie in [0, 1] for every provider")


def _grown(a: _A, n: int) -> _A:
    if n == a.shape[0]:
        return a.copy()
    out = np.zeros(n, dtype=a.dtype)
    out[: a.shape[0]] = a
    return out  # type: ignore[return-value]


def _words(n_images: int) -> int:
    return max(1, -(-n_images // 64))


@lru_cache(maxsize=64)
def _image_index(names: tuple[str, ...]) -> Mapping[str, int]:
    return {name: b for b, name in enumerate(names)}


def _updated_bits(
    table: ProviderTable,
    changed: list[Provider],
    rows: NDArray[np.int64],
    gone: NDArray[np.int64],
    n: int,
) -> tuple[tuple[str, ...], NDArray[np.uint64]]:
    index = dict(table.image_index)
    names = list(table.image_names)
    for p in changed:
        for image in sorted(p.images):
            if image not in index:
                index[image] = len(names)
                names.append(image)
    old = table.image_bits
    if old.shape == (_words(len(names)), n):
        bits = old.copy()
    else:
        bits = np.zeros((_words(len(names)), n), dtype=np.uint64)
        bits[: old.shape[0], : old.shape[1]] = old
    bits[:, rows] = 0
    bits[:, gone] = 0
    held = [
        (index[image], r) for p, r in zip(changed, rows.tolist(), strict=True) for image in p.images
    ]
    if held:
        b = np.array([h[0] for h in held], dtype=np.int64)
        r = np.array([h[1] for h in held], dtype=np.int64)
        np.bitwise_or.at(
            bits, (b // 64, r), np.left_shift(np.uint64(1), (b % 64).astype(np.uint64))
        )
    return tuple(names), bits


def _replace(table: ProviderTable, **changes: object) -> ProviderTable:
    fields = {k: getattr(table, k) for k in table.__dataclass_fields__}
    fields.update(changes)
    return ProviderTable(**fields)
