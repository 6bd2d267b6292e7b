"""Admission by cost: one memory budget shared by every request in progress.

Counting requests treats a 64x48 thumbnail like a 16-megapixel photo, so a handful of slots is
either far too few for small images or far too many for large ones. Here each request holds a
:class:`Reservation` in a :class:`MemoryBudget` for the memory it actually needs:

* while its body arrives, every received chunk is charged (:meth:`Reservation.grow`): a client
  that dribbles its upload holds the few bytes it has sent, never a slot;
* once the body is complete and the image header read, the request asks for its whole estimated
  cost (:meth:`Reservation.reserve`, see :func:`gansr.serve.worker.job_cost`). It is admitted at
  once when that fits, else it waits in a line of at most ``max_waiting`` requests until its
  deadline; past either bound it gets 503 with ``Retry-After``. A cost larger than the whole
  budget can never fit and gets 413 at once;
* the reservation is released when the job ends in its worker thread, not when the request's
  coroutine ends, so a client that disconnects cannot free memory that is still in use.

The line is first fit: a waiter that fits is admitted even when an older, larger one does not,
so cheap requests are not stuck behind a big one. Once the oldest waiter that does not fit has
used half of its wait, nobody passes it any more and the memory that frees up goes to it, so a
big request under a stream of small ones still gets its turn within its deadline.

Every method runs on the event loop (worker threads hand their releases over with
``loop.call_soon_threadsafe``), so the accounting needs no lock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from gansr.serve.errors import ApiError

__all__ = ["MemoryBudget", "Reservation"]


def _mb(n: int) -> str:
    return f"{n / 1e6:,.0f} MB" if n >= 10_000_000 else f"{n / 1e6:.1f} MB"


@dataclass(eq=False)
class _Waiter:
    reservation: Reservation
    extra: int  # bytes asked for beyond what the reservation already holds
    since: float  # loop time when it joined the line
    patience: float  # seconds from ``since`` to its deadline
    future: asyncio.Future[None]


class MemoryBudget:
    """Bytes that the requests in progress may hold at once.

    Args:
        budget_bytes: the budget.
        max_waiting: requests that may wait for memory at once (0: none wait, 503 at once).
        retry_after: seconds a refused client should wait, given how many requests wait ahead.
    """

    def __init__(self, budget_bytes: int, *, max_waiting: int, retry_after: Callable[[int], int]) -> None:
        if budget_bytes < 1:
            raise ValueError(f"budget_bytes must be positive, got {budget_bytes}")
        self.budget = budget_bytes
        self.max_waiting = max_waiting
        self._retry_after = retry_after
        self._used = 0
        self._open = 0
        self._line: list[_Waiter] = []

    @property
    def used(self) -> int:
        """Bytes held now (received bodies and admitted jobs' estimated costs)."""
        return self._used

    @property
    def waiting(self) -> int:
        """Requests waiting for memory."""
        return len(self._line)

    @property
    def open(self) -> int:
        """Reservations not yet released: requests uploading, waiting or being processed."""
        return self._open

    def reservation(self) -> Reservation:
        """A new, empty reservation for one request."""
        self._open += 1
        return Reservation(self)

    # ---- internals, used by Reservation

    def busy(self, why: str) -> ApiError:
        """The 503 for a request refused because the budget is exhausted."""
        retry = self._retry_after(len(self._line))
        return ApiError(
            503, f"the server is busy ({why}); retry in {retry} s", headers={"Retry-After": str(retry)}
        )

    def _fits(self, extra: int) -> bool:
        return self._used + extra <= self.budget

    def _blocked_by_starving(self, now: float) -> bool:
        """Whether a waiter that does not fit has used half its wait (so none may pass it)."""
        return any(
            now - w.since >= w.patience / 2 and not self._fits(w.extra)
            for w in self._line
            if not w.future.done()
        )

    def _take(self, reservation: Reservation, extra: int) -> None:
        self._used += extra
        reservation.held += extra

    def _give_back(self, reservation: Reservation) -> None:
        self._used -= reservation.held
        reservation.held = 0
        self._open -= 1
        self._dispatch()

    def _dispatch(self) -> None:
        """Admit waiters that now fit, oldest first, stopping at a starving one that does not."""
        for waiter in list(self._line):
            if waiter.future.done():  # timed out or cancelled; its request removes it
                continue
            if self._fits(waiter.extra):
                self._take(waiter.reservation, waiter.extra)
                self._line.remove(waiter)
                waiter.future.set_result(None)
            elif waiter.future.get_loop().time() - waiter.since >= waiter.patience / 2:
                break


class Reservation:
    """One request's share of a :class:`MemoryBudget`; see the module doc for its life cycle."""

    def __init__(self, budget: MemoryBudget) -> None:
        self._budget = budget
        self.held = 0
        self._released = False
        self._handed_over = False

    def grow(self, nbytes: int) -> None:
        """Charge ``nbytes`` more (a received chunk) without waiting.

        Raises:
            ApiError: 503 when the budget has no room for them.
        """
        budget = self._budget
        if not budget._fits(nbytes):
            raise budget.busy(f"its memory budget of {_mb(budget.budget)} is in use")
        budget._take(self, nbytes)

    async def reserve(self, total: int, *, deadline: float) -> None:
        """Hold ``total`` bytes in all, waiting until the loop time ``deadline`` at most.

        Raises:
            ApiError: 413 when ``total`` exceeds the whole budget; 503 (``Retry-After``) when the
                line of waiting requests is full or the deadline passes.
        """
        budget = self._budget
        extra = total - self.held
        if extra <= 0:
            return
        if total > budget.budget:
            raise ApiError(
                413,
                f"processing this image needs an estimated {_mb(total)} of memory, more than the "
                f"server's budget of {_mb(budget.budget)}; upload a smaller image or choose a "
                "smaller outscale",
            )
        loop = asyncio.get_running_loop()
        now = loop.time()
        if budget._fits(extra) and not budget._blocked_by_starving(now):
            budget._take(self, extra)
            return
        if len(budget._line) >= budget.max_waiting:
            raise budget.busy(f"{_mb(budget.used)} of its {_mb(budget.budget)} memory budget is in use")
        waiter = _Waiter(self, extra, now, max(0.0, deadline - now), loop.create_future())
        budget._line.append(waiter)
        try:
            async with asyncio.timeout_at(deadline):
                await waiter.future
        except TimeoutError:
            if not waiter.future.done() or waiter.future.cancelled():
                raise budget.busy(f"no memory came free within {waiter.patience:.0f} s") from None
            # Admitted in the same loop iteration as the deadline passed: keep the memory.
        finally:
            if waiter in budget._line:  # left without being admitted: it may have held others back
                budget._line.remove(waiter)
                budget._dispatch()

    def hand_over(self) -> Callable[[], None]:
        """Pass the release to whoever ends the work (a job's completion): from now on
        :meth:`release` does nothing, and the returned function releases, once."""
        self._handed_over = True
        return self._release

    def release(self) -> None:
        """Give everything back (idempotent); a no-op once :meth:`hand_over` was called."""
        if not self._handed_over:
            self._release()

    def _release(self) -> None:
        if not self._released:
            self._released = True
            self._budget._give_back(self)
