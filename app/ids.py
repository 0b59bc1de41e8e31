"""Record ids: UUIDv7 strings made on the device (RFC 9562).

A record made offline keeps its id forever, and ids sort by creation time, which keeps
B-tree inserts local. Python gains ``uuid.uuid7`` only in 3.14; this is the RFC's
"method 3" (a 12-bit sub-millisecond counter in ``rand_a``) in a dozen lines, cheaper than a
dependency and fast enough for bulk demo generation.
"""

from __future__ import annotations

import os
import threading
import time
import uuid

_lock = threading.Lock()
_last_ms = 0
_counter = 0


def new_id() -> str:
    """A new UUIDv7 as a lowercase canonical string, monotonic within this process."""
    global _last_ms, _counter
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms <= _last_ms:
            _counter += 1
            if _counter > 0xFFF:  # counter exhausted: borrow the next millisecond
                _last_ms += 1
                _counter = 0
            ms = _last_ms
        else:
            _last_ms = ms
            _counter = 0
        counter = _counter
    rand_b = int.from_bytes(os.urandom(8), "big") & 0x3FFF_FFFF_FFFF_FFFF
    value = (ms & 0xFFFF_FFFF_FFFF) << 80 | 0x7 << 76 | counter << 64 | 0b10 << 62 | rand_b
    return str(uuid.UUID(int=value))


def id_from_parts(ms: int, rand: int) -> str:
    """A UUIDv7 from a given millisecond timestamp and 74 random bits.

    Used by the deterministic demo generator, which must make the same ids for the same seed.
    """
    rand_a = (rand >> 62) & 0xFFF
    rand_b = rand & 0x3FFF_FFFF_FFFF_FFFF
    value = (ms & 0xFFFF_FFFF_FFFF) << 80 | 0x7 << 76 | rand_a << 64 | 0b10 << 62 | rand_b
    return str(uuid.UUID(int=value))


def is_valid_id(value: object) -> bool:
    """True if ``value`` is a canonical UUID string (any version; imported data may differ)."""
    if not isinstance(value, str) or len(value) != 36:
        return False
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False
