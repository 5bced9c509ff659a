"""App-key transfer over a finished security1 session: KEY and its KEY_RESP echo.

reference/upstream-espnow-security.md §2.5 and summary item 8: the initiator sends
``KEY{data = CTR(app_key)}`` (keystream [64, 96)); the responder decrypts it, installs the
32-byte key and echoes it, re-encrypted further down the same stream, as
``KEY_RESP{data}`` (keystream [96, 128)).

Upstream's initiator counts any type-4 frame as success; ours decrypts the echo and requires
it to equal the key it sent (constant-time compare), so a KEY_RESP is proof that the responder
holds the session key and received the right app key. A mismatching echo raises
:class:`~espnow_sec.protocol.errors.KeyEchoMismatch` and leaves the stream where it was.
"""

from __future__ import annotations

from .. import crypto
from .errors import BadLength, KeyEchoMismatch
from .records import Key, KeyResp
from .security1 import Security1Client, Security1Device

APP_KEY_LEN = 32


def make_key(client: Security1Client, app_key: bytes) -> Key:
    """Encrypt the app key for the KEY record (consumes 32 keystream bytes)."""
    if len(app_key) != APP_KEY_LEN:
        raise ValueError(f"app key must be {APP_KEY_LEN} bytes, got {len(app_key)}")
    return Key(client.encrypt(app_key))


def accept_key(device: Security1Device, key: Key) -> tuple[bytes, KeyResp]:
    """Decrypt a KEY record; returns ``(app_key, KEY_RESP to send)``.

    The data must be exactly 32 bytes (upstream accepts >= 32 and echoes all of it; we refuse
    anything else before touching the stream).
    """
    if len(key.data) != APP_KEY_LEN:
        raise BadLength(f"KEY carries {len(key.data)} bytes, expected {APP_KEY_LEN}")
    app_key = device.decrypt(key.data)
    return app_key, KeyResp(device.encrypt(app_key))


def check_key_resp(client: Security1Client, app_key: bytes, resp: KeyResp) -> None:
    """Verify that KEY_RESP echoes ``app_key``; advance the stream only if it does."""
    if len(resp.data) != APP_KEY_LEN:
        raise BadLength(f"KEY_RESP carries {len(resp.data)} bytes, expected {APP_KEY_LEN}")
    stream = client.record_stream()
    if not crypto.constant_time_equal(stream.peek(resp.data), app_key):
        raise KeyEchoMismatch("KEY_RESP does not echo the app key we sent")
    stream.advance(APP_KEY_LEN)
