"""How big a process's share of a line may be, and when it may hold one at all: pure
arithmetic, the same for budgets (pico-USD), rate windows (requests or tokens) and
concurrency slots (gateway.counters.shares uses it).

A share is taken only far from the limit, so that near it every call is decided on the
shared counters alone, as without shares:

- it is at most 1/FRACTION of what the line has free, and never more than MAX_CALLS
  calls' worth (what a process that dies strands until its share's lease runs out);
- it is not taken at all below MIN_CALLS calls' worth: a line whose free amount is under
  FRACTION x MIN_CALLS calls (2048) gets no share;
- it is kept only while the line still has (FRACTION - 1) times the share free, as seen
  at the last exchange with the shared counters (taking it, or any call's admission).
"""

from __future__ import annotations

FRACTION = 64
MIN_CALLS = 32
MAX_CALLS = 1024
# Concurrency slots are taken one reservation each: a block is at most this many, and at
# most 1/SLOT_FRACTION of the limit (the counters report no free count to size it by).
SLOT_BLOCK = 64
SLOT_FRACTION = 256
SLOT_MIN = 16


def share_size(free: int, need: int) -> int:
    """What to take of a line with `free` left, for calls that need up to `need` each; 0:
    no share (too near the limit, or a limit too small to share)."""
    need = max(need, 1)
    size = min(free // FRACTION, MAX_CALLS * need)
    return size if size >= MIN_CALLS * need else 0


def keeps(free: int, size: int) -> bool:
    """A share of `size` may be held (or used) while the line has `free` left besides it."""
    return free >= (FRACTION - 1) * size


def slot_block(limit: int) -> int:
    """Concurrency slots a process holds for a --max-parallel `limit`; 0: none."""
    size = min(limit // SLOT_FRACTION, SLOT_BLOCK)
    return size if size >= SLOT_MIN else 0
