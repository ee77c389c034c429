"""A loopback RunPod serverless endpoint: RunPod's client API on 127.0.0.1, driving N real
worker processes that run ``hpo_nb.executors.runpod.worker`` under the unmodified SDK worker loop.

For tests and for trying an endpoint set-up before paying for GPUs. The client reaches it the
way it reaches RunPod, through the SDK: ``RUNPOD_ENDPOINT_BASE_URL=http://127.0.0.1:P/v2``
(or ``runpod.endpoint_url_base``), any endpoint id (e.g. ``local``), any API key unless the
server was given one. Workers get what the cloud sets (``RUNPOD_WEBHOOK_GET_JOB`` and friends,
``RUNPOD_POD_ID``, ``RUNPOD_AI_API_KEY``) pointing back here, so the SDK's own job-take,
job-done, progress, job-stop and ping calls are what is exercised.

The job semantics (queue, states, cancel, timeouts) are ``jobs.JobBoard``'s; this module serves
them over HTTP and runs the worker processes: a worker that dies fails the job it held and is
restarted. ``hpo-nb runpod-local`` is ``serve``.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

from aiohttp import web

from ...errors import ConfigError
from .api import EndpointApi, Worker
from .jobs import JobBoard

log = logging.getLogger(__name__)

WORKER_MODULE = "hpo_nb.executors.runpod.worker"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
ENDPOINT = "local"  # the id workers are told; clients may use any id


class LoopbackEndpoint:
    """The server plus its worker processes. ``start()`` returns once it listens;
    ``wait_ready()`` blocks until the workers poll for jobs (TensorFlow import takes a while).

    Args:
        workers: worker processes (0 to 64).
        port: where to listen (0: any free port; see ``url``).
        host: a loopback address only.
        api_key: the key clients must send (default: any non-empty key).
        command: the worker command (default: ``python -m hpo_nb.executors.runpod.worker``).
        worker_env: extra environment for the workers (e.g. ``HPO_NB_SIMULATE_EPOCH_S``).
        log_dir: where worker output goes (default: a new temporary folder).
        python: the interpreter for the default command.
        restart: start a fresh worker when one exits.
        poll_timeout_s: how long a worker's job-take and job-stop long-polls wait.

    Raises:
        ConfigError: a host that is not loopback, or a bad worker count.
    """

    def __init__(self, workers: int = 2, port: int = 0, host: str = "127.0.0.1", *,
                 api_key: str | None = None, command: Sequence[str] | None = None,
                 worker_env: Mapping[str, str] | None = None, log_dir: str | os.PathLike | None = None,
                 python: str = sys.executable, restart: bool = True, poll_timeout_s: float = 10.0) -> None:
        if host not in LOOPBACK_HOSTS:
            raise ConfigError(f"runpod-local serves on the loopback interface only (127.0.0.1), not {host!r}.")
        if not isinstance(workers, int) or isinstance(workers, bool) or not 0 <= workers <= 64:
            raise ConfigError(f"workers must be an integer in [0, 64], not {workers!r}.")
        self.n_workers = workers
        self.host = host
        self.port = port
        self._api_key = api_key
        self.command = list(command or [python, "-m", WORKER_MODULE])
        self._worker_env = dict(worker_env or {})
        self.log_dir = Path(log_dir) if log_dir else Path(tempfile.mkdtemp(prefix="hpo-nb-runpod-local-"))
        self._restart = restart
        self._poll_timeout_s = poll_timeout_s
        self._token = secrets.token_hex(16)  # the workers' key; never the client's
        self._board = JobBoard()
        self._workers: dict[str, Worker] = {}
        self._generation: collections.Counter[int] = collections.Counter()
        self._crashes: collections.Counter[int] = collections.Counter()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._api: EndpointApi | None = None
        self._closing = False
        self._tasks: list[asyncio.Task] = []

    # ------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        """The client base URL: what ``RUNPOD_ENDPOINT_BASE_URL`` should be."""
        return f"http://{self.host}:{self.port}/v2"

    def start(self) -> "LoopbackEndpoint":
        """Serve in a background thread and start the workers. Returns: self, once listening."""
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
        """Stop the workers (SIGTERM, then SIGKILL after 5 s) and the server."""
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
        """Block until ``workers`` (default: all) worker processes are polling for jobs.

        Returns:
            self.

        Raises:
            TimeoutError: not ready within ``timeout`` seconds (their logs say why).
        """
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
        """Returns: the job's ``/status`` answer, or None for an unknown id."""
        return self._call(lambda: self._board.jobs[job_id].status_json() if job_id in self._board.jobs else None)

    def jobs(self) -> list[dict[str, Any]]:
        """Returns: every job's ``/status`` answer, oldest first."""
        return self._call(lambda: [j.status_json() for j in self._board.jobs.values()])

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
        self._api = EndpointApi(self._board, self._workers, self._token, self._api_key, self._poll_timeout_s,
                                self._retire)
        self._runner = web.AppRunner(self._api.app(), access_log=None, handler_cancellation=True)
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
        assert self._api is not None
        await self._api.close()
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
        # The workers share one checkpoint folder, as cloud workers share a network volume: a job
        # retried after its worker died resumes from the last epoch (hpo_nb.checkpoints).
        env.setdefault("HPO_NB_CHECKPOINT_DIR", str(self.log_dir / "checkpoints"))
        env.update(self._worker_env)
        root = Path(__file__).resolve().parents[3]  # where this hpo_nb was imported from
        if root.name not in ("site-packages", "dist-packages"):  # a checkout: workers import the same copy
            env["PYTHONPATH"] = os.pathsep.join(p for p in (str(root), env.get("PYTHONPATH")) if p)
        log_path = self.log_dir / f"worker-{index}-{gen}.log"
        with open(log_path, "ab") as out:
            proc = subprocess.Popen(self.command, env=env, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, cwd=str(self.log_dir), start_new_session=True)
        self._workers[worker_id] = Worker(worker_id, index, proc, log_path)

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
                self._board.fail_running(w.jobs, f"worker {w.id} exited ({_exit_text(code)}) while running this job")
                if not w.retiring:
                    log.warning("RunPod worker %s exited (%s); restarting it", w.id, _exit_text(code))
                self._crashes[w.index] = 0 if (w.ready or w.retiring) else self._crashes[w.index] + 1
                if self._restart and not self._closing:
                    delay = min(30.0, 2.0 ** self._crashes[w.index] - 1) if self._crashes[w.index] else 0.0
                    asyncio.get_running_loop().call_later(delay, self._respawn, w.index)
            changed = self._board.expire(now) or changed  # RunPod's executionTimeout
            if changed and self._api is not None:
                await self._api.notify()

    def _respawn(self, index: int) -> None:
        if not self._closing:
            self._spawn(index)

    def _retire(self, worker: Worker) -> None:
        """``stopPod``: the platform stops this worker after its job; a fresh one replaces it."""
        worker.retiring = True
        assert self._loop is not None
        self._loop.call_later(5.0, lambda: worker.proc.poll() is None and _signal_group(worker.proc, signal.SIGTERM))


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _exit_text(code: int) -> str:
    return f"signal {-code}" if code < 0 else f"exit code {code}"


def serve(workers: int = 2, port: int = 8765, host: str = "127.0.0.1") -> int:
    """``hpo-nb runpod-local``: run the loopback endpoint in the foreground until Ctrl+C or SIGTERM.

    Args:
        workers: worker processes.
        port: where to listen.
        host: a loopback address.

    Returns:
        The exit status, 0.

    Raises:
        ConfigError: a host that is not loopback, or a bad worker count.
    """
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
