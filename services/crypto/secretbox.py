"""Authenticated encryption of secrets at rest (exchange keys, tenant bot tokens).

AES-256-GCM under keys derived (HKDF-SHA256) from the master key. Every ciphertext is bound to its context
(for example `user:42|exchange:binance|field:secret`) as associated data, so it cannot be moved to
another row. The master key setting may list several keys separated by commas: the first encrypts, all
decrypt; `rotate()` re-encrypts under the first, so old keys can be retired.

Format: b"v1" | key id (8 bytes) | nonce (12 bytes) | ciphertext+tag, base64url-encoded.
"""

from __future__ import annotations

import base64
import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_VERSION = b"v1"
_INFO = b"cryptouniverse secretbox v1"


class DecryptionError(Exception):
    """The ciphertext is not ours, was tampered with, or belongs to another context."""


def _derive(master: str) -> tuple[bytes, bytes]:
    material = master.encode()
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(material)
    key_id = hashlib.sha256(b"key-id" + key).digest()[:8]
    return key_id, key


class SecretBox:
    def __init__(self, master_keys: str) -> None:
        keys = [part.strip() for part in master_keys.split(",") if part.strip()]
        if not keys:
            raise ValueError("no master key")
        if any(len(k) < 16 for k in keys):
            raise ValueError("a master key must be at least 16 characters")
        derived = [_derive(k) for k in keys]
        self._current_id, current = derived[0]
        self._current = AESGCM(current)
        self._by_id = {key_id: AESGCM(key) for key_id, key in derived}

    def encrypt(self, plaintext: str, context: str) -> str:
        nonce = os.urandom(12)
        sealed = self._current.encrypt(nonce, plaintext.encode(), context.encode())
        return base64.urlsafe_b64encode(_VERSION + self._current_id + nonce + sealed).decode()

    def decrypt(self, token: str, context: str) -> str:
        try:
            raw = base64.urlsafe_b64decode(token.encode())
        except (ValueError, TypeError) as exc:
            raise DecryptionError("malformed ciphertext") from exc
        if len(raw) < 2 + 8 + 12 + 16 or raw[:2] != _VERSION:
            raise DecryptionError("malformed ciphertext")
        key_id, nonce, sealed = raw[2:10], raw[10:22], raw[22:]
        aead = self._by_id.get(key_id)
        if aead is None:
            raise DecryptionError("encrypted under an unknown key")
        try:
            return aead.decrypt(nonce, sealed, context.encode()).decode()
        except InvalidTag as exc:
            raise DecryptionError("authentication failed") from exc

    def needs_rotation(self, token: str) -> bool:
        try:
            return base64.urlsafe_b64decode(token.encode())[2:10] != self._current_id
        except (ValueError, TypeError):
            return True

    def rotate(self, token: str, context: str) -> str:
        """Re-encrypt under the current key (no-op semantics if already current, new nonce)."""
        return self.encrypt(self.decrypt(token, context), context)
