"""``RequestStore``: the orchestrator's store calls for requests, made off its thread.

A caller's request is written (and, in a cluster, announced) before it is acknowledged;
the requests written by any replica, or before a restart, are read back; a slot is
claimed before its run starts, so no slot ever runs twice; a started type's requests are
forgotten. Each answer comes back to the orchestrator as a message, which hands it here.
Used on the orchestrator's thread only.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from archibald_actors.actors.base import Address
from archibald_actors.actors.orchestrator_state import OrchestratorState
from archibald_actors.actors.request_rows import UnseenRequest
from archibald_actors.actors.store_worker import StoreWorker, announce
from archibald_actors.clock import Clock
from archibald_actors.events import EventBus
from archibald_actors.messages import (
    Pick,
    RequestSync,
    StoredRequest,
    fail,
)
from archibald_actors.request_queue import JobKey, PendingRequest
from archibald_actors.status import iso_at
from archibald_actors.store.base import ClusterStore, Store
from archibald_actors.store_messages import (
    RequestStored,
    SlotClaimed,
    StoredRequestsRead,
    StoreResult,
)

__all__ = ["CLAIM_RETRY", "RequestStore"]

log = logging.getLogger("archibald_actors.orchestrator")

#: Clock seconds before a pick is retried when the store could not claim a slot.
CLAIM_RETRY = 5.0


class RequestStore:
    """Durable requests and slot claims for the orchestrator."""

    def __init__(
        self,
        state: OrchestratorState,
        worker: StoreWorker,
        address: Address,
        clock: Clock,
        events: EventBus,
        *,
        cluster: ClusterStore | None,
    ) -> None:
        self._state = state
        self._worker = worker
        self._address = address
        self._clock = clock
        self._events = events
        self._cluster = cluster

    # --- a caller's requests ------------------------------------------------------

    def write(self, request: RequestSync) -> None:
        """Write a caller's request; it comes back as ``RequestStored``."""
        sync_type, trigger, agent_id = request.sync_type, request.trigger, request.agent_id
        requested_at, cluster = self._clock.wall(request.requested_at), self._cluster

        def write(store: Store) -> int:
            # Without an agent, called as before agents existed (stores written for that keep working).
            if agent_id is None:
                row = store.add_request(sync_type, trigger, requested_at)
            else:
                row = store.add_request(sync_type, trigger, requested_at, agent_id)
            announce(cluster, "request", {"syncType": sync_type, "agentId": agent_id, "id": row})
            return row

        address = self._address
        self._worker.submit(
            write, lambda result: address.tell(RequestStored(request, result)), for_caller=True
        )

    @staticmethod
    def written(message: RequestStored) -> int | None:
        """The request's row if it is stored (queue it now); else None, its caller told why not."""
        if message.result.error is not None:
            fail(message.request.reply, message.result.error)
            return None
        return message.result.unwrap()

    def read_stored(self) -> None:
        """Read the stored requests; they come back as ``StoredRequestsRead``."""
        address = self._address

        def read(store: Store) -> list[StoredRequest]:
            return [
                (r.request_id, r.sync_type, r.trigger, r.requested_at, r.agent_id) for r in store.requests()
            ]

        self._worker.submit(read, lambda result: address.tell(StoredRequestsRead(result)))

    def unseen(self, result: StoreResult[list[StoredRequest]]) -> list[UnseenRequest]:
        """The stored requests not queued yet (none if the store failed: the next change retries)."""
        if result.error is not None:
            log.error("cannot read the stored requests: %s", result.error)
            return []
        return self._state.rows.unseen(result.unwrap(), self._clock)

    def forget(self, key: JobKey) -> None:
        """The job ``key`` started (or was dropped): the stored requests it finished are done."""
        self.delete(self._state.rows.started(key))

    def delete(self, rows: list[int]) -> None:
        """Delete stored requests that are done (or can no longer run)."""
        if rows:
            self._worker.submit(lambda store: store.delete_requests(rows), _log_failure)

    # --- slot claims --------------------------------------------------------------

    def claim(self, request: PendingRequest) -> None:
        """Claim the request's slot; nothing else starts until ``SlotClaimed`` comes back."""
        state = self._state
        assert state.epoch is not None and request.scheduled_at is not None  # leading: booted
        sync_type, agent_id = request.sync_type, request.agent_id
        offset, slot = request.scheduled_at - state.epoch, request.scheduled_at
        # A slot of a per-agent type is served once its last agent's job is claimed: a
        # restart before then catches the slot up, and the claims made skip those agents.
        others = [*state.queue.pending(), *state.claiming.values()]
        newest = slot > state.served.get(sync_type, float("-inf")) and not (
            agent_id is not None and any(r.sync_type == sync_type and r.scheduled_at == slot for r in others)
        )
        state.claiming[request.lane] = request

        def claim(store: Store) -> bool:
            claimed = (
                store.claim_slot(sync_type, offset)
                if agent_id is None
                else store.claim_slot(sync_type, offset, agent_id)
            )
            if not claimed:
                return False
            if newest:  # served means claimed (about to run), not merely fired
                store.save_served(sync_type, offset)
            return True

        address = self._address
        self._worker.submit(claim, lambda result: address.tell(SlotClaimed(request, result)))

    def settle(self, message: SlotClaimed) -> tuple[PendingRequest | None, bool]:
        """What to run after a claim, and whether the store failed (a pick is then re-armed).

        An automatic request whose slot was claimed already (served before a restart, or
        by another replica) is skipped; a user's request merged with such a slot still
        runs, for the user and not for the slot. If the store could not answer, the
        request goes back to the queue and the pick is retried later: running without
        the claim could run a slot twice.
        """
        state, request = self._state, message.request
        state.claiming.pop(request.lane, None)
        slot = request.scheduled_at
        assert slot is not None
        if message.result.error is not None:
            error = message.result.error
            log.error("cannot claim %s slot, retrying in %g s: %s", request.sync_type, CLAIM_RETRY, error)
            state.queue.restore(request)
            if not state.pick_armed:
                state.pick_armed = True
                address = self._address
                self._clock.call_at(self._clock.now() + CLAIM_RETRY, lambda: address.tell(Pick()))
            return None, True
        if message.result.unwrap():
            state.served[request.sync_type] = max(slot, state.served.get(request.sync_type, slot))
            return replace(request, claimed=slot), False
        state.counters[request.sync_type].duplicates += 1
        log.info("%s slot %s was already claimed", request.sync_type, slot)
        skipped = iso_at(self._clock, slot)
        self._events.publish("slot.skipped", syncType=request.sync_type, scheduledAt=skipped)
        return (None if request.trigger == "auto" else replace(request, scheduled_at=None)), False


def _log_failure(result: StoreResult[None]) -> None:
    if result.error is not None:
        log.error("cannot forget the started requests: %s", result.error)
