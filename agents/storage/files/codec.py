"""Encryption and erasure coding of segments: pure functions, no I/O.

An object is cut into fixed-size plaintext segments (:data:`SEGMENT_BYTES`; the last one
shorter; an empty object is one empty segment). Each segment is encrypted on its own with
AES-256-GCM under the object's key: the nonce is the segment's index (a key encrypts one
object only, so a nonce never repeats) and the associated data binds the object id, the
index and the plaintext size, so segments cannot be swapped, reordered or truncated
without the tag failing. The ciphertext (plaintext + 16-byte tag) is then erasure-coded
k of n with ISA-L's Vandermonde Reed-Solomon (``isa_l_rs_vand`` through pyeclib): any k
of the n shards rebuild it. The code is systematic (shards 0..k-1 hold the ciphertext
itself), so decoding from the data shards is a copy.

Segment size: 4 MiB. Measured here (bench/storage.py) encode runs at about 3 GB/s for
1-4 MiB segments with k=8, n=12 and falls off above 8 MiB as the working set leaves the
caches, while smaller segments mean more shard requests per byte; 4 MiB gives 512 KiB
shards at k=8.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Mapping, Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pyeclib.ec_iface import ECDriver

from agents.errors import UserError, VerificationError

SEGMENT_BYTES = 4 * 2**20
TAG_BYTES = 16
KEY_BYTES = 32
BACKEND = "isa_l_rs_vand"
CIPHER = "AES-256-GCM"
MAX_SHARDS = 32  # ISA-L's Reed-Solomon backends stop at 32 fragments
FRAGMENT_HEADER_BYTES = 80  # pyeclib's header on every fragment

__all__ = [
    "BACKEND",
    "CIPHER",
    "SEGMENT_BYTES",
    "Coder",
    "check_kn",
    "decrypt_segment",
    "encrypt_segment",
    "new_key",
    "random_id",
    "segment_count",
    "sha256_hex",
    "shard_bytes_bound",
]


def new_key() -> bytes:
    """A fresh random 256-bit object key."""
    return AESGCM.generate_key(bit_length=256)


def sha256_hex(data: bytes | bytearray | memoryview) -> str:
    return hashlib.sha256(data).hexdigest()


def segment_count(size: int, segment_bytes: int = SEGMENT_BYTES) -> int:
    """Segments of an object of `size` bytes (at least one, so empty objects have a tag)."""
    return max(1, -(-size // segment_bytes))


def shard_bytes_bound(segment_bytes: int, k: int) -> int:
    """An upper bound of one shard's size for segments of at most `segment_bytes`."""
    return -(-(segment_bytes + TAG_BYTES) // k) + FRAGMENT_HEADER_BYTES + 64


def _nonce(index: int) -> bytes:
    return index.to_bytes(12, "big")


def _aad(object_id: str, index: int, plain_size: int) -> bytes:
    return f"dcloud/storage/segment/v1:{object_id}:{index}:{plain_size}".encode()


def encrypt_segment(key: bytes, *, object_id: str, index: int, plain: bytes) -> bytes:
    """AES-256-GCM of one segment: ciphertext followed by the 16-byte tag."""
    return AESGCM(key).encrypt(_nonce(index), plain, _aad(object_id, index, len(plain)))


def decrypt_segment(key: bytes, *, object_id: str, index: int, cipher: bytes) -> bytes:
    """The plaintext of one segment.

    Raises:
        VerificationError: the tag does not verify (wrong key, or the bytes or their place
            in the object were altered).
    """
    plain_size = len(cipher) - TAG_BYTES
    try:
        return AESGCM(key).decrypt(_nonce(index), cipher, _aad(object_id, index, plain_size))
    except InvalidTag:
        raise VerificationError(
            f"segment {index} of object {object_id} does not decrypt: the key in the keyring "
            "is not this object's key (was keyring/<object>.key replaced?), or the data was "
            "altered; nothing was written"
        ) from None


class Coder:
    """k-of-n erasure coding of byte strings (thread-safe)."""

    def __init__(self, k: int, n: int) -> None:
        check_kn(k, n)
        self.k, self.n = k, n
        self._driver = _driver(k, n)

    def encode(self, data: bytes) -> list[bytes]:
        """The n shards of `data`; shards 0..k-1 are data, the rest parity."""
        shards: list[bytes] = self._driver.encode(data)
        return shards

    def decode(self, shards: Mapping[int, bytes]) -> bytes:
        """The data from any k shards (index -> bytes), each already hash-verified."""
        if len(shards) < self.k:
            raise VerificationError(f"{len(shards)} shards cannot rebuild a segment; {self.k} can")
        chosen = [shards[i] for i in sorted(shards)[: self.k]]
        data: bytes = self._driver.decode(chosen)
        return data

    def rebuild(self, shards: Mapping[int, bytes], missing: Sequence[int]) -> dict[int, bytes]:
        """The shards of indexes `missing`, rebuilt from any k others."""
        if len(shards) < self.k:
            raise VerificationError(f"{len(shards)} shards cannot rebuild a segment; {self.k} can")
        chosen = [shards[i] for i in sorted(shards)[: self.k]]
        rebuilt: list[bytes] = self._driver.reconstruct(chosen, list(missing))
        return dict(zip(missing, rebuilt, strict=True))


def check_kn(k: int, n: int) -> None:
    """Refuse a k/n pair the codec cannot use, saying which values work."""
    if not (1 <= k < n <= MAX_SHARDS):
        raise UserError(
            f"k={k}, n={n} is not a usable erasure code: need 1 <= k < n <= {MAX_SHARDS} "
            "(k shards rebuild a segment, n are stored; e.g. k=8 n=12)"
        )


@functools.lru_cache(maxsize=16)
def _driver(k: int, n: int) -> ECDriver:
    return ECDriver(k=k, m=n - k, ec_type=BACKEND)


def random_id() -> str:
    """A random 128-bit id in hex (objects and shards; reveals nothing about content)."""
    return os.urandom(16).hex()
