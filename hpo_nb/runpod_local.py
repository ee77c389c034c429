"""A loopback RunPod serverless endpoint: RunPod's client API on 127.0.0.1, driving N real
worker processes that run ``runpod_image/handler.py`` under the unmodified SDK worker loop.

For tests and for trying an endpoint set-up before paying for GPUs. The client reaches it the
way it reaches RunPod, through the SDK: ``RUNPOD_ENDPOINT_BASE_URL=http://127.0.0.1:P/v2``
(or ``runpod.endpoint_url_base``), any endpoint id (e.g. ``local``), any API key unless the
server was given one. Workers get what the cloud sets (``RUNPOD_WEBHOOK_GET_JOB`` and friends,
``RUNPOD_POD_ID``, ``RUNPOD_AI_API_KEY``) pointing back here, so the SDK's own job-take,
job-done, progress, job-stop and ping calls are what is exercised.

Semantics follow RunPod's documented API: a FIFO queue; ``/cancel`` ends a queued job at once
and signals a running one's worker over the job-stop long-poll; ``policy.executionTimeout``
(ms) ends a job TIMED_OUT; a worker process that dies fails the job it held and is restarted.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from aiohttp import web

from .errors import ConfigError

log = logging.getLogger("hpo_nb.runpod_local")

HANDLER = Path(__file__).resolve().parents[1] / "runpod_image" / "handler.py"
FINAL = ("COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT")
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
ENDPOINT = "local"  # the id workers are told; clients may use any id
DEFAULT_EXECUTION_TIMEOUT_MS = 600_000  # RunPod's default: 10 minutes


@dataclass
class _Job:
    id: str
    input: Any
    policy: dict[str, Any]
    created: float = field(default_factory=time.monotonic)
    status: str = "IN_QUEUE"
    worker: str | None = None
    taken_at: float | None = None
    done_at: float | None = None
    output: Any = None
    error: str | None = None
    stream: list[Any] = field(default_factory=list)
    streamed: int = 0
    retries: int = 0

    def delay_ms(self) -> int:
        end = self.taken_at if self.taken_at is not None else (self.done_at or time.monotonic())
        return int(1000 * (end - self.created))

    def execution_ms(self) -> int:
        if self.taken_at is None:
            return 0
        return int(1000 * ((self.done_at or time.monotonic()) - self.taken_at))

    def status_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "status": self.status, "delayTime": self.delay_ms(),
                                "executionTime": self.execution_ms()}
        if self.worker:
            data["workerId"] = self.worker
        if self.output is not None:
            data["output"] = self.output
        if self.error is not None:
            data["error"] = self.error
        if self.retries:
            data["retries"] = self.retries
        return data

    def finish(self, status: str, *, output: Any = None, error: str | None = None) -> None:
        self.status = status
        self.done_at = time.monotonic()
        if output is not None or status == "COMPLETED":
            self.output = output
        elif status != "COMPLETED":
            self.output = None  # drop the last progress payload: a failed job has no output
        self.error = error


@dataclass
class _Worker:
    id: str
    index: int
    proc: subprocess.Popen
    log_path: Path
    started: float = field(default_factory=time.monotonic)
    ready: bool = False
    last_ping: float | None = None
    jobs: set[str] = field(default_factory=set)
    retiring: bool = False


class LoopbackEndpoint:
    """The server plus its worker processes. ``start()`` returns once it listens;
    ``wait_ready()`` blocks until the workers poll for jobs (TensorFlow import takes a while)."""

    def __init__(self, workers: int = 2, port: int = 0, host: str = "127.0.0.1", *,
                 api_key: str | None = None, handler: str | os.PathLike = HANDLER,
                 worker_env: Mapping[str, str] | None = None, log_dir: str | os.PathLike | None = None,
                 python: str = sys.executable, restart: bool = True, poll_timeout_s: float = 10.0) -> None:
        if host not in LOOPBACK_HOSTS:
            raise ConfigError(f"runpod-local serves on the loopback interface only (127.0.0.1), not {host!r}.")
        if not isinstance(workers, int) or isinstance(workers, bool) or not 0 <= workers <= 64:
            raise ConfigError(f"workers must be an integer in [0, 64], not {workers!r}.")
        if not Path(handler).is_file():
            raise ConfigError(f"worker handler not found at {handler}; run from a checkout of hpo-nb.")
        self.n_workers = workers
        self.host = host
        self.port = port
        self._api_key = api_key
        self._handler = Path(handler)
        self._worker_env = dict(worker_env or {})
        self.log_dir = Path(log_dir) if log_dir else Path(tempfile.mkdtemp(prefix="hpo-nb-runpod-local-"))
        self._python = python
        self._restart = restart
        self._poll_timeout_s = poll_timeout_s
        self._token = secrets.token_hex(16)  # the workers' key; never the client's
        self._jobs: dict[str, _Job] = {}
        self._queue: collections.deque[str] = collections.deque()
        self._workers: dict[str, _Worker] = {}
        self._stops: dict[str, set[str]] = collections.defaultdict(set)
        self._generation = collections.Counter()
        self._crashes = collections.Counter()
        self._counts = collections.Counter()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._changed: asyncio.Condition | None = None
        self._closing = False
        self._tasks: list[asyncio.Task] = []

    # ------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        """The client base URL: what ``RUNPOD_ENDPOINT_BASE_URL`` should be."""
        return f"http://{self.host}:{self.port}/v2"

    def start(self) -> "LoopbackEndpoint":
        started = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self._start())
            except BaseException as exc:  # surfaced to the caller of start()
                errors.append(exc)
                started.set()
                return
            started.set()
            loop.run_forever()
            loop.run_until_complete(self._stop())
            loop.close()

        self._thread = threading.Thread(target=run, name="hpo-nb-runpod-local", daemon=True)
        self._thread.start()
        started.wait()
        if errors:
            raise errors[0]
        return self

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)
        self._loop = None

    def __enter__(self) -> "LoopbackEndpoint":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def wait_ready(self, workers: int | None = None, timeout: float = 180.0) -> "LoopbackEndpoint":
        """Block until ``workers`` (default: all) worker processes are polling for jobs."""
        want = self.n_workers if workers is None else workers
        deadline = time.monotonic() + timeout
        while self._call(lambda: sum(1 for w in self._workers.values() if w.ready)) < want:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{want} RunPod workers not ready after {timeout:.0f}s; see logs in {self.log_dir}")
            time.sleep(0.2)
        return self

    # ------------------------------------------------------------------ inspection (any thread)

    def workers(self) -> dict[str, dict[str, Any]]:
        """Live workers: id -> pid, ready, jobs, log path."""
        return self._call(lambda: {w.id: {"pid": w.proc.pid, "ready": w.ready, "jobs": sorted(w.jobs),
                                          "log": str(w.log_path)} for w in self._workers.values()})

    def job(self, job_id: str) -> dict[str, Any] | None:
        return self._call(lambda: self._jobs[job_id].status_json() if job_id in self._jobs else None)

    def jobs(self) -> list[dict[str, Any]]:
        return self._call(lambda: [j.status_json() for j in self._jobs.values()])

    def worker_logs(self) -> str:
        """Everything every worker process printed so far (all generations)."""
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.log_dir.glob("*.log")))

    def _call(self, fn: Any) -> Any:
        loop = self._loop
        if loop is None:
            raise RuntimeError("the loopback endpoint is not running")

        async def wrapped() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(wrapped(), loop).result(10)

    # ------------------------------------------------------------------ server

    async def _start(self) -> None:
        self._changed = asyncio.Condition()
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
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        for index in range(self.n_workers):
            self._spawn(index)
        self._tasks = [asyncio.create_task(self._supervise())]
        log.info("RunPod loopback endpoint on %s with %d workers (logs in %s)", self.url, self.n_workers, self.log_dir)

    async def _stop(self) -> None:
        self._closing = True
        await self._notify()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for w in list(self._workers.values()):
            _signal_group(w.proc, signal.SIGTERM)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(w.proc.poll() is None for w in self._workers.values()):
            await asyncio.sleep(0.1)
        for w in list(self._workers.values()):
            _signal_group(w.proc, signal.SIGKILL)
            w.proc.wait()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _notify(self) -> None:
        assert self._changed is not None
        async with self._changed:
            self._changed.notify_all()

    async def _wait(self, predicate: Any, timeout: float) -> bool:
        assert self._changed is not None
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(lambda: self._closing or predicate()), timeout)
            except asyncio.TimeoutError:
                return False
        return not self._closing

    # ------------------------------------------------------------------ workers

    def _spawn(self, index: int) -> None:
        gen = self._generation[index]
        self._generation[index] += 1
        worker_id = f"local-{index}-{gen}"
        base = f"http://{self.host}:{self.port}/v2/{ENDPOINT}"
        key = f"key={self._token}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("RUNPOD_")}  # never the client's key
        env.update({
            "RUNPOD_WEBHOOK_GET_JOB": f"{base}/job-take/$ID?{key}",
            "RUNPOD_WEBHOOK_POST_OUTPUT": f"{base}/job-done/$RUNPOD_POD_ID/$ID?{key}",
            "RUNPOD_WEBHOOK_POST_STREAM": f"{base}/job-stream/$RUNPOD_POD_ID/$ID?{key}",
            "RUNPOD_WEBHOOK_PING": f"{base}/ping/$RUNPOD_POD_ID?{key}",
            "RUNPOD_PING_INTERVAL": "5000",
            "RUNPOD_POD_ID": worker_id,
            "RUNPOD_AI_API_KEY": self._token,
            "RUNPOD_SKIP_AUTO_SYSTEM_CHECKS": "true",
            "RUNPOD_SKIP_GPU_CHECK": "true",
            "RUNPOD_LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
            "TF_CPP_MIN_LOG_LEVEL": "2",
        })
        env.update(self._worker_env)
        log_path = self.log_dir / f"worker-{index}-{gen}.log"
        with open(log_path, "ab") as out:
            proc = subprocess.Popen([self._python, str(self._handler)], env=env, stdout=out,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    cwd=str(self._handler.parent), start_new_session=True)
        self._workers[worker_id] = _Worker(worker_id, index, proc, log_path)

    async def _supervise(self) -> None:
        """Fail the job of a worker that died, and start a fresh worker in its place."""
        while not self._closing:
            await asyncio.sleep(0.25)
            now = time.monotonic()
            changed = False
            for w in list(self._workers.values()):
                code = w.proc.poll()
                if code is None:
                    continue
                _signal_group(w.proc, signal.SIGKILL)  # its heartbeat child, if any
                del self._workers[w.id]
                changed = True
                for job_id in w.jobs:
                    job = self._jobs.get(job_id)
                    if job is not None and job.status == "IN_PROGRESS":
                        job.finish("FAILED", error=f"worker {w.id} exited ({_exit_text(code)}) while running this job")
                        self._counts["failed"] += 1
                if not w.retiring:
                    log.warning("RunPod worker %s exited (%s); restarting it", w.id, _exit_text(code))
                self._crashes[w.index] = 0 if (w.ready or w.retiring) else self._crashes[w.index] + 1
                if self._restart and not self._closing:
                    delay = min(30.0, 2.0 ** self._crashes[w.index] - 1) if self._crashes[w.index] else 0.0
                    asyncio.get_running_loop().call_later(delay, self._respawn, w.index)
            for job in self._jobs.values():  # RunPod's executionTimeout
                if job.status == "IN_PROGRESS" and job.taken_at is not None:
                    limit = job.policy.get("executionTimeout", DEFAULT_EXECUTION_TIMEOUT_MS)
                    if isinstance(limit, (int, float)) and 1000 * (now - job.taken_at) > limit:
                        job.finish("TIMED_OUT", error=f"execution timeout of {int(limit)} ms exceeded")
                        if job.worker:
                            self._stops[job.worker].add(job.id)
                        changed = True
            if changed:
                await self._notify()

    def _respawn(self, index: int) -> None:
        if not self._closing:
            self._spawn(index)

    # ------------------------------------------------------------------ client API

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

    async def _create(self, request: web.Request) -> "_Job | web.Response":
        if not self._authorized(request):
            return _unauthorized()
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError):
            return web.json_response({"error": "request body must be JSON"}, status=400)
        if not isinstance(body, dict) or "input" not in body:
            return web.json_response({"error": "request body must be a JSON object with an 'input' key"}, status=400)
        policy = body.get("policy") if isinstance(body.get("policy"), dict) else {}
        job = _Job(id=f"{uuid.uuid4()}-local", input=body["input"], policy=policy)
        self._jobs[job.id] = job
        self._queue.append(job.id)
        await self._notify()
        return job

    def _find(self, request: web.Request) -> "_Job | web.Response":
        if not self._authorized(request):
            return _unauthorized()
        job = self._jobs.get(request.match_info["id"])
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
        if job.status == "IN_QUEUE":
            self._queue.remove(job.id)
            job.finish("CANCELLED")
        elif job.status == "IN_PROGRESS":
            job.finish("CANCELLED")
            if job.worker:
                self._stops[job.worker].add(job.id)
        await self._notify()
        return web.json_response({"id": job.id, "status": job.status})

    async def _retry(self, request: web.Request) -> web.Response:
        job = self._find(request)
        if isinstance(job, web.Response):
            return job
        if job.status not in ("FAILED", "TIMED_OUT"):
            return web.json_response({"error": f"only FAILED or TIMED_OUT jobs can be retried, not {job.status}"},
                                     status=400)
        job.status, job.worker, job.taken_at, job.done_at = "IN_QUEUE", None, None, None
        job.output = job.error = None
        job.created = time.monotonic()
        job.retries += 1
        self._counts["retried"] += 1
        self._queue.append(job.id)
        await self._notify()
        return web.json_response({"id": job.id, "status": job.status})

    async def _health(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return _unauthorized()
        states = collections.Counter(j.status for j in self._jobs.values())
        workers = self._workers.values()
        return web.json_response({
            "jobs": {"completed": states["COMPLETED"], "failed": states["FAILED"] + states["TIMED_OUT"],
                     "inProgress": states["IN_PROGRESS"], "inQueue": states["IN_QUEUE"],
                     "retried": self._counts["retried"]},
            "workers": {"idle": sum(1 for w in workers if w.ready and not w.jobs),
                        "running": sum(1 for w in workers if w.jobs),
                        "initializing": sum(1 for w in workers if not w.ready)},
        })

    async def _purge(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return _unauthorized()
        removed = 0
        while self._queue:
            self._jobs[self._queue.popleft()].finish("CANCELLED")
            removed += 1
        await self._notify()
        return web.json_response({"removed": removed, "status": "completed"})

    # ------------------------------------------------------------------ worker API

    def _worker(self, request: web.Request) -> _Worker | None:
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
        await self._notify()  # health changed: a worker is idle
        got = await self._wait(lambda: bool(self._queue), self._poll_timeout_s)
        transport = request.transport
        if not got or not self._queue or worker.id not in self._workers or transport is None or transport.is_closing():
            return web.Response(status=204)
        taken = []
        while self._queue and len(taken) < size:
            job = self._jobs[self._queue.popleft()]
            job.status, job.worker, job.taken_at = "IN_PROGRESS", worker.id, time.monotonic()
            worker.jobs.add(job.id)
            taken.append({"id": job.id, "input": job.input})
        await self._notify()
        return web.json_response(taken if batch else taken[0])

    def _release(self, worker: _Worker) -> None:
        """The worker says it holds no job: any job still running on it was dropped."""
        for job_id in worker.jobs:
            job = self._jobs.get(job_id)
            if job is not None and job.status == "IN_PROGRESS":
                job.finish("FAILED", error=f"worker {worker.id} dropped this job without a result")
        worker.jobs.clear()

    async def _done(self, request: web.Request) -> web.Response:
        worker = self._worker(request)
        if worker is None and not secrets.compare_digest(request.query.get("key", ""), self._token):
            return _unauthorized()
        job = self._jobs.get(request.match_info["id"])
        body = await _posted_json(request)
        if isinstance(body, web.Response):
            return body
        if job is None or not isinstance(body, dict):
            return web.json_response({})
        if body.get("status") == "IN_PROGRESS":
            if job.status == "IN_PROGRESS":
                job.output = body.get("output")
        else:
            if job.status == "IN_PROGRESS":
                if body.get("error"):
                    job.finish("FAILED", error=str(body["error"]))
                else:
                    job.finish("COMPLETED", output=body.get("output"))
            if worker is not None:
                worker.jobs.discard(job.id)
                if body.get("stopPod"):
                    self._retire(worker)
        await self._notify()
        return web.json_response({})

    def _retire(self, worker: _Worker) -> None:
        """``stopPod``: the platform stops this worker after its job; a fresh one replaces it."""
        worker.retiring = True
        assert self._loop is not None
        self._loop.call_later(5.0, lambda: worker.proc.poll() is None and _signal_group(worker.proc, signal.SIGTERM))

    async def _stream_in(self, request: web.Request) -> web.Response:
        if not secrets.compare_digest(request.query.get("key", ""), self._token):
            return _unauthorized()
        job = self._jobs.get(request.match_info["id"])
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
        await self._wait(lambda: bool(self._stops.get(worker.id)), self._poll_timeout_s)
        ids = sorted(self._stops.pop(worker.id, set()))
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


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _exit_text(code: int) -> str:
    return f"signal {-code}" if code < 0 else f"exit code {code}"


def serve(workers: int = 2, port: int = 8765, host: str = "127.0.0.1") -> int:
    """``hpo-nb runpod-local``: run the loopback endpoint in the foreground until Ctrl+C."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    endpoint = LoopbackEndpoint(workers=workers, port=port, host=host).start()
    print(f"RunPod loopback endpoint: {endpoint.url}  ({workers} workers; their logs: {endpoint.log_dir})")
    print(f"Point the RunPod SDK at it:  export RUNPOD_ENDPOINT_BASE_URL={endpoint.url} "
          "RUNPOD_ENDPOINT_ID=local RUNPOD_API_KEY=any")
    print("Then: Experiment(..., executor='runpod'). Ctrl+C stops the endpoint and its workers.", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        endpoint.wait_ready(timeout=600)
        print(f"{workers} workers ready.", flush=True)
        while not done.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        endpoint.stop()
    return 0
