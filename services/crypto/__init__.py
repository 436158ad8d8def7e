from services.crypto.secretbox import DecryptionError, SecretBox

__all__ = ["DecryptionError", "SecretBox"]
