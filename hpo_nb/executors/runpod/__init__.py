"""Trials as RunPod serverless jobs.

One job is one trial. Modules, in the order a trial flows through them:

- ``settings``: the ``runpod={...}`` options, validated (pydantic) before anything trains.
- ``executor``: ``RunPodExecutor``, the job state machine (retries, fallback, budget).
- ``wire``: the job input and progress payloads both sides agree on.
- ``transport``: how the executor reaches an endpoint (HTTP, or an in-memory fake for tests).
- ``worker``: the handler RunPod's worker loop calls (``runpod_image/handler.py`` starts it).
- ``loopback``: a RunPod endpoint on 127.0.0.1 with real worker processes (``hpo-nb runpod-local``).

Only ``RunPodExecutor`` and ``check_options`` are imported here: the worker needs the runpod
SDK, the loopback endpoint needs aiohttp, and neither belongs in a client's import.
"""

from .executor import RunPodExecutor
from .journal import abandon_job
from .settings import RunPodSettings, check_options

__all__ = ["RunPodExecutor", "RunPodSettings", "abandon_job", "check_options"]
