"""Wrapping a secret key to an Ethereum account's public key (ECIES on secp256k1).

A renter gives a provider the key of one stored object (an image layer) and nothing
else: it wraps the 32-byte object key to the provider's public key. The sender makes a
fresh secp256k1 key pair, derives a shared secret with the recipient's public key
(ECDH), stretches it with HKDF-SHA256 into an AES-256-GCM key, and encrypts the object
key with a context (the object and the recipient's address) as associated data, so a
wrapped key opens only for that recipient and that object.

The recipient's public key comes from its own answer (``GET /v1/health`` of a provider
agent), checked against its address with :func:`address_of`: a key that does not hash
to the address the marketplace named is refused.
"""

from __future__ import annotations

import os
from typing import Annotated

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from pydantic import StringConstraints

from protocol.errors import ProtocolError
from protocol.schemas import Wire

PublicKeyHex = Annotated[str, StringConstraints(pattern=r"^0x04[0-9a-f]{128}$")]
"""An uncompressed secp256k1 public key: 0x04, then x and y (32 bytes each), lower-case hex."""

_INFO = b"dcloud/keywrap/v1"


class KeyWrapError(ProtocolError):
    """A wrapped key that does not open with this key for this context."""


class WrappedKey(Wire):
    ephemeral: PublicKeyHex
    nonce: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{24}$")]
    ciphertext: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64,256}$")]


def _private(secret: bytes) -> ec.EllipticCurvePrivateKey:
    return ec.derive_private_key(int.from_bytes(secret, "big"), ec.SECP256K1())


def _point(public_hex: str) -> ec.EllipticCurvePublicKey:
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(
            ec.SECP256K1(), bytes.fromhex(public_hex.removeprefix("0x"))
        )
    except ValueError as exc:
        raise KeyWrapError(f"not a secp256k1 public key ({exc})") from None


def _hex(key: ec.EllipticCurvePublicKey) -> str:
    raw = key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return "0x" + raw.hex()


def public_key_of(secret: bytes) -> str:
    """The uncompressed public key of an account's 32-byte private key."""
    return _hex(_private(secret).public_key())


def address_of(public_hex: str) -> str:
    """The Ethereum address of an uncompressed public key (keccak of x || y, last 20 bytes)."""
    raw = bytes.fromhex(public_hex.removeprefix("0x"))
    if len(raw) != 65 or raw[0] != 4:
        raise KeyWrapError("a public key is 65 bytes starting with 0x04")
    return to_checksum_address(keccak(raw[1:])[-20:])


def _aes_key(shared: bytes, ephemeral: str, recipient: str) -> bytes:
    salt = bytes.fromhex(ephemeral.removeprefix("0x")) + bytes.fromhex(recipient.removeprefix("0x"))
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=_INFO).derive(shared)


def wrap(key: bytes, recipient_public: str, *, context: bytes) -> WrappedKey:
    """`key` encrypted so that only the holder of `recipient_public`'s private key opens it,
    and only for `context`."""
    recipient = _point(recipient_public)
    ephemeral = ec.generate_private_key(ec.SECP256K1())
    eph_hex = _hex(ephemeral.public_key())
    shared = ephemeral.exchange(ec.ECDH(), recipient)
    nonce = os.urandom(12)
    aes = AESGCM(_aes_key(shared, eph_hex, _hex(recipient)))
    return WrappedKey(
        ephemeral=eph_hex, nonce=nonce.hex(), ciphertext=aes.encrypt(nonce, key, context).hex()
    )


def unwrap(wrapped: WrappedKey, secret: bytes, *, context: bytes) -> bytes:
    """The key inside `wrapped`, opened with the recipient's 32-byte private key.

    Raises:
        KeyWrapError: wrapped for another key or another context, or altered.
    """
    me = _private(secret)
    shared = me.exchange(ec.ECDH(), _point(wrapped.ephemeral))
    aes = AESGCM(_aes_key(shared, wrapped.ephemeral, _hex(me.public_key())))
    try:
        return aes.decrypt(bytes.fromhex(wrapped.nonce), bytes.fromhex(wrapped.ciphertext), context)
    except InvalidTag:
        raise KeyWrapError(
            "the wrapped key does not open with this account for this object (wrapped for "
            "another recipient or object, or altered)"
        ) from None
