"""The journal of RunPod jobs on their trials, so a later process can follow or cancel them.

``RunPodExecutor`` writes ``entry(...)`` on a trial the moment RunPod accepts its job
(``TrialJob.journal``; the search stores it as a trial system attribute, ``hpo_nb.reattach``).
When the process dies, the next search on the study either follows the job
(``RunPodExecutor.follow``, same endpoint) or cancels it with ``abandon_job``: no job keeps
running, and billing, unseen. The endpoint is written as a hash, never its id, and never the key.
"""

from __future__ import annotations

import hashlib
import os
import time
from typing import Any, Mapping

from .tracking import Attempts
from .transport import HttpTransport, NotFound, Transport, TransportError, call_with_backoff


def entry(job_id: str, endpoint_id: str, attempts: Attempts) -> dict[str, Any]:
    """The journal entry of an accepted job.

    Args:
        job_id: RunPod's id for the job.
        endpoint_id: the endpoint it runs on (stored as ``endpoint_key``).
        attempts: the trial's attempts so far (this one counted): earlier ones' time is kept, so a
            process that follows the job reports the trial's whole cost.

    Returns:
        JSON-ready dict: executor, id, endpoint, attempt, earlier_execution_ms, earlier_delay_ms,
        accepted_at (Unix seconds).
    """
    return {"executor": "runpod", "id": job_id, "endpoint": endpoint_key(endpoint_id), "attempt": attempts.attempts,
            "earlier_execution_ms": attempts.execution_ms, "earlier_delay_ms": attempts.delay_ms,
            "accepted_at": time.time()}


def names_endpoint(journaled: Mapping[str, Any], endpoint_id: str) -> bool:
    """Returns: True if ``journaled`` is a RunPod job entry of the endpoint ``endpoint_id``."""
    return journaled.get("executor") == "runpod" and journaled.get("endpoint") == endpoint_key(endpoint_id) \
        and isinstance(journaled.get("id"), str)


def endpoint_key(endpoint_id: str) -> str:
    """Returns: a short hash naming an endpoint in journals without writing its id down."""
    return hashlib.sha256(f"runpod-endpoint:{endpoint_id}".encode()).hexdigest()[:16]


def abandon_job(journaled: Mapping[str, Any], transport: Transport | None = None) -> str:
    """Cancel a journaled job that no process will follow (e.g. the search now runs locally).

    Uses ``RUNPOD_ENDPOINT_ID`` / ``RUNPOD_API_KEY`` (and ``RUNPOD_ENDPOINT_BASE_URL``) when they
    name the job's endpoint; otherwise says what to cancel by hand.

    Args:
        journaled: the trial's journal entry (``entry``).
        transport: how to reach the endpoint (tests); default: HTTP with the environment's key.

    Returns:
        One line for the user: what was done.
    """
    job_id = str(journaled.get("id"))
    if transport is None:
        endpoint, key = os.environ.get("RUNPOD_ENDPOINT_ID"), os.environ.get("RUNPOD_API_KEY")
        if not endpoint or not key or endpoint_key(endpoint) != journaled.get("endpoint"):
            return (f"its RunPod job {job_id} may still be running and billed: cancel it in the RunPod console "
                    "(RUNPOD_ENDPOINT_ID / RUNPOD_API_KEY here do not name its endpoint)")
        transport = HttpTransport(endpoint, lambda: key)
    assert transport is not None
    try:
        call_with_backoff(lambda: transport.cancel(job_id), retries=3, max_backoff_s=5.0)
    except NotFound:
        return f"its RunPod job {job_id} is no longer known to the endpoint (it ended)"
    except TransportError as exc:
        return f"could not cancel its RunPod job {job_id} ({exc}): cancel it in the RunPod console"
    return f"cancelled its RunPod job {job_id} (not followed here)"
