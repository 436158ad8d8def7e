from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.crypto import DecryptionError, SecretBox

KEY_A = "a" * 32
KEY_B = "b" * 32


@given(st.text(max_size=200), st.text(min_size=1, max_size=50))
def test_roundtrip(plaintext: str, context: str) -> None:
    box = SecretBox(KEY_A)
    assert box.decrypt(box.encrypt(plaintext, context), context) == plaintext


def test_ciphertext_is_bound_to_its_context() -> None:
    box = SecretBox(KEY_A)
    token = box.encrypt("api-secret", "user:1|exchange:binance|field:secret")
    with pytest.raises(DecryptionError):
        box.decrypt(token, "user:2|exchange:binance|field:secret")


def test_tampering_is_detected() -> None:
    box = SecretBox(KEY_A)
    token = box.encrypt("api-secret", "ctx")
    raw = bytearray(token.encode())
    raw[-5] = ord("A") if raw[-5] != ord("A") else ord("B")
    with pytest.raises(DecryptionError):
        box.decrypt(raw.decode(), "ctx")


def test_plaintext_does_not_appear_in_ciphertext() -> None:
    token = SecretBox(KEY_A).encrypt("VERYSECRETVALUE", "ctx")
    assert "VERYSECRETVALUE" not in token


def test_key_rotation() -> None:
    old = SecretBox(KEY_A)
    token = old.encrypt("s3cret", "ctx")
    rotated_box = SecretBox(f"{KEY_B},{KEY_A}")
    assert rotated_box.needs_rotation(token)
    assert rotated_box.decrypt(token, "ctx") == "s3cret"
    new_token = rotated_box.rotate(token, "ctx")
    assert not rotated_box.needs_rotation(new_token)
    with pytest.raises(DecryptionError):
        SecretBox(KEY_A).decrypt(new_token, "ctx")
    assert SecretBox(KEY_B).decrypt(new_token, "ctx") == "s3cret"


def test_short_master_key_is_refused() -> None:
    with pytest.raises(ValueError):
        SecretBox("short")
