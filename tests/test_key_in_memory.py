"""The RunPod key given as ``runpod={"api_key": ...}`` is held as a ``SecretStr`` from the moment
the Experiment checks it: not in ``vars(exp)``, its repr or str, nor the run log."""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr

KEY = "rpa_MEMORYKEY_0f1e2d3c4b5a"


def _plain_strings(value: Any, depth: int = 0) -> list[str]:
    """Every str reachable through containers and hpo_nb objects' attributes (a few levels)."""
    if depth > 4:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in _plain_strings(k, depth + 1) + _plain_strings(v, depth + 1)]
    if isinstance(value, (list, tuple, set, frozenset)):
        return [s for v in value for s in _plain_strings(v, depth + 1)]
    if type(value).__module__.startswith("hpo_nb") and hasattr(value, "__dict__"):
        return _plain_strings(vars(value), depth + 1)
    return []


def test_the_key_is_not_in_plain_text_on_the_experiment(runs_dir, monkeypatch):
    from hpo_nb import Experiment

    monkeypatch.delenv("RUNPOD_API_KEY", raising=False)
    exp = Experiment(dataset="digits", executor="runpod", n_trials=1, max_epochs=1, runs_dir=runs_dir,
                     progress="none", runpod={"endpoint_id": "key-endpoint-id", "api_key": KEY})
    assert isinstance(exp._executor_options["api_key"], SecretStr)
    assert exp._executor_options["api_key"].get_secret_value() == KEY  # still usable by the executor
    assert not [s for s in _plain_strings(vars(exp)) if KEY in s]
    for text in (repr(vars(exp)), repr(exp), str(exp)):
        assert KEY not in text
    executor = exp._make_executor()  # what start() builds from the kept options
    assert executor.settings.api_key.get_secret_value() == KEY and KEY not in repr(vars(executor))
    executor.shutdown()
    for handler in __import__("logging").getLogger("hpo_nb").handlers:
        handler.flush()
    assert KEY not in (exp.run_dir / "run.log").read_text()
