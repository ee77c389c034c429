"""The loopback endpoint's HTTP API: RunPod's client routes and its worker routes, over a ``JobBoard``.

Clients (the runpod SDK, ``HttpTransport``) call ``/run``, ``/status``, ``/cancel`` and friends
with a Bearer key; workers (the SDK's worker loop) long-poll ``/job-take`` and ``/job-stop``,
post progress and results to ``/job-done`` and ping, with the endpoint's own token. Any change
wakes the long-polls (one ``asyncio.Condition``). Runs on the endpoint's event loop only.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from aiohttp import web

from .jobs import FINAL, Job, JobBoard


@dataclass
class Worker:
    """One worker process as the endpoint sees it."""

    id: str
    index: int
    proc: subprocess.Popen
    log_path: Path
    started: float = field(default_factory=time.monotonic)
    ready: bool = False
    last_ping: float | None = None
    jobs: set[str] = field(default_factory=set)
    retiring: bool = False


class EndpointApi:
    """The request handlers. Build it on the event loop that serves it.

    Args:
        board: the jobs.
        workers: the live workers, by id (the endpoint adds and removes them).
        token: the key workers send (``?key=``).
        api_key: the key clients must send, or None for any non-empty key.
        poll_timeout_s: how long job-take and job-stop long-polls wait.
        retire: called when a worker's result asks to stop its pod (``stopPod``).
    """

    def __init__(self, board: JobBoard, workers: dict[str, Worker], token: str, api_key: str | None,
                 poll_timeout_s: float, retire: Callable[[Worker], None]) -> None:
        self._board = board
        self._workers = workers
        self._token = token
        self._api_key = api_key
        self._poll_timeout_s = poll_timeout_s
        self._retire = retire
        self._changed = asyncio.Condition()
        self._closing = False

    def app(self) -> web.Application:
        """Returns: the aiohttp application with every route."""
        app = web.Application(client_max_size=10 * 1024 * 1024)
        client = "/v2/{endpoint}"
        app.add_routes([
            web.post(client + "/run", self._run),
            web.post(client + "/runsync", self._runsync),
            web.route("*", client + "/status/{id}", self._status),
            web.route("*", client + "/stream/{id}", self._stream),
            web.post(client + "/cancel/{id}", self._cancel),
            web.post(client + "/retry/{id}", self._retry),
            web.get(client + "/health", self._health),
            web.post(client + "/purge-queue", self._purge),
            web.get(client + "/job-take/{worker}", self._take),
            web.get(client + "/job-take-batch/{worker}", self._take),
            web.post(client + "/job-done/{worker}/{id}", self._done),
            web.post(client + "/job-stream/{worker}/{id}", self._stream_in),
            web.get(client + "/job-stop/{worker}", self._job_stop),
            web.get(client + "/ping/{worker}", self._ping),
        ])
        return app

    async def close(self) -> None:
        """End every long-poll at once (the endpoint is stopping)."""
        self._closing = True
        await self.notify()

    async def notify(self) -> None:
        """Wake the long-polls: jobs or workers changed."""
        async with self._changed:
            self._changed.notify_all()

    async def _wait(self, predicate: Any, timeout: float) -> bool:
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(lambda: self._closing or predicate()), timeout)
            except asyncio.TimeoutError:
                return False
        return not self._closing

    # ------------------------------------------------------------------ client API (Bearer key)

    def _authorized(self, request: web.Request) -> bool:
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or not auth[7:].strip():
            return False
        return self._api_key is None or secrets.compare_digest(auth[7:], self._api_key)

    async def _run(self, request: web.Request) -> web.Response:
        job_or_error = await self._create(request)
        if isinstance(job_or_error, web.Response):
            return job_or_error
        return web.json_response({"id": job_or_error.id, "status": job_or_error.status})

    async def _runsync(self, request: web.Request) -> web.Response:
        job_or_error = await self._create(request)
        if isinstance(job_or_error, web.Response):
            return job_or_error
        job = job_or_error
        await self._wait(lambda: job.status in FINAL, 90)
        return web.json_response(job.status_json())

    async def _create(self, request: web.Request) -> "Job | web.Response":
        if not self._authorized(request):
            return _unauthorized()
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError):
            return web.json_response({"error": "request body must be JSON"}, status=400)
        if not isinstance(body, dict) or "input" not in body:
            return web.json_response({"error": "request body must be a JSON object with an 'input' key"}, status=400)
        job = self._board.create(body["input"], body.get("policy"))
        await self.notify()
        return job

    def _find(self, request: web.Request) -> "Job | web.Response":
        if not self._authorized(request):
            return _unauthorized()
        job = self._board.jobs.get(request.match_info["id"])
        if job is None:
            return web.json_response({"error": "request does not exist"}, status=404)
        return job

    async def _status(self, request: web.Request) -> web.Response:
        job = self._find(request)
        return job if isinstance(job, web.Response) else web.json_response(job.status_json())

    async def _stream(self, request: web.Request) -> web.Response:
        job = self._find(request)
        if isinstance(job, web.Response):
            return job
        chunks = job.stream[job.streamed:]
        job.streamed = len(job.stream)
        return web.json_response({"status": job.status, "stream": [{"output": c} for c in chunks]})

    async def _cancel(self, request: web.Request) -> web.Response:
        job = self._find(request)
        if isinstance(job, web.Response):
            return job
        self._board.cancel(job)
        await self.notify()
        return web.json_response({"id": job.id, "status": job.status})

    async def _retry(self, request: web.Request) -> web.Response:
        job = self._find(request)
        if isinstance(job, web.Response):
            return job
        problem = self._board.retry(job)
        if problem:
            return web.json_response({"error": problem}, status=400)
        await self.notify()
        return web.json_response({"id": job.id, "status": job.status})

    async def _health(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return _unauthorized()
        workers = self._workers.values()
        return web.json_response({
            "jobs": self._board.job_counts(),
            "workers": {"idle": sum(1 for w in workers if w.ready and not w.jobs),
                        "running": sum(1 for w in workers if w.jobs),
                        "initializing": sum(1 for w in workers if not w.ready)},
        })

    async def _purge(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return _unauthorized()
        removed = self._board.purge()
        await self.notify()
        return web.json_response({"removed": removed, "status": "completed"})

    # ------------------------------------------------------------------ worker API

    def _worker(self, request: web.Request) -> Worker | None:
        if not secrets.compare_digest(request.query.get("key", ""), self._token):
            return None
        return self._workers.get(request.match_info["worker"])

    async def _take(self, request: web.Request) -> web.Response:
        worker = self._worker(request)
        if worker is None:
            return _unauthorized()
        worker.ready = True
        if request.query.get("job_in_progress") == "0":
            self._release(worker)
        batch = request.path.split("/")[-2] == "job-take-batch"
        size = max(1, min(int(request.query.get("batch_size", "1") or 1), 16)) if batch else 1
        await self.notify()  # health changed: a worker is idle
        got = await self._wait(lambda: bool(self._board.queue), self._poll_timeout_s)
        transport = request.transport
        if (not got or not self._board.queue or worker.id not in self._workers or transport is None
                or transport.is_closing()):
            return web.Response(status=204)
        taken = []
        for job in self._board.take(worker.id, size):
            worker.jobs.add(job.id)
            taken.append({"id": job.id, "input": job.input})
        await self.notify()
        return web.json_response(taken if batch else taken[0])

    def _release(self, worker: Worker) -> None:
        """The worker says it holds no job: any job still running on it was dropped."""
        self._board.fail_running(worker.jobs, f"worker {worker.id} dropped this job without a result")
        worker.jobs.clear()

    async def _done(self, request: web.Request) -> web.Response:
        worker = self._worker(request)
        if worker is None and not secrets.compare_digest(request.query.get("key", ""), self._token):
            return _unauthorized()
        job = self._board.jobs.get(request.match_info["id"])
        body = await _posted_json(request)
        if isinstance(body, web.Response):
            return body
        if job is None or not isinstance(body, dict):
            return web.json_response({})
        if self._board.report(job, body):
            if worker is not None:
                worker.jobs.discard(job.id)
                if body.get("stopPod"):
                    self._retire(worker)
        await self.notify()
        return web.json_response({})

    async def _stream_in(self, request: web.Request) -> web.Response:
        if not secrets.compare_digest(request.query.get("key", ""), self._token):
            return _unauthorized()
        job = self._board.jobs.get(request.match_info["id"])
        body = await _posted_json(request)
        if isinstance(body, web.Response):
            return body
        if job is not None and job.status == "IN_PROGRESS" and isinstance(body, dict):
            job.stream.append(body.get("output"))
        return web.json_response({})

    async def _job_stop(self, request: web.Request) -> web.Response:
        worker = self._worker(request)
        if worker is None:
            return _unauthorized()
        await self._wait(lambda: bool(self._board.stops.get(worker.id)), self._poll_timeout_s)
        ids = sorted(self._board.stops.pop(worker.id, set()))
        if not ids:
            return web.Response(status=204)
        return web.json_response({"jobsToStop": ids})

    async def _ping(self, request: web.Request) -> web.Response:
        worker = self._worker(request)
        if worker is None:
            return _unauthorized()
        worker.last_ping = time.monotonic()
        return web.json_response({})

async def _posted_json(request: web.Request) -> Any:
    """What a worker posted: the SDK sends JSON as text (not application/json), so parse the
    text; a 400 response when it is not JSON."""
    try:
        return json.loads(await request.text())
    except ValueError:
        return web.json_response({"error": "body must be JSON text"}, status=400)


def _unauthorized() -> web.Response:
    return web.json_response({"error": "Unauthorized"}, status=401)
