"""One process of a shared study, for tests: ``python tests/study_worker.py SETTINGS_JSON``.

Opens the Experiment (storage, study), writes ``ready``, waits for ``go`` (so that several
processes start searching at the same moment), runs, and prints one JSON line: what this
process sees in storage afterwards.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def main() -> None:
    cfg = json.loads(sys.argv[1])
    space = {k: tuple(v["range"]) if isinstance(v, dict) else v for k, v in cfg["space"].items()}  # as the CLI
    import keras  # noqa: F401  - TensorFlow's start-up before 'ready', not inside the first trial
    from hpo_nb import Experiment
    from hpo_nb import training  # noqa: F401

    exp = Experiment("digits", n_trials=cfg["n_trials"], max_epochs=cfg["max_epochs"],
                     concurrency=cfg.get("concurrency", 1), storage=cfg["storage"], name=cfg["name"],
                     search_space=space, runs_dir=cfg["runs_dir"], progress="none",
                     pruning=cfg.get("pruning", False), heartbeat_interval=cfg.get("heartbeat_interval", 2), save_models=False)
    if cfg.get("ready"):
        Path(cfg["ready"]).touch()
    while cfg.get("go") and not Path(cfg["go"]).exists():
        time.sleep(0.05)
    exp.run()
    df = exp.results
    me = f":{os.getpid()}"
    print("RESULT " + json.dumps({
        "pid": os.getpid(),
        "numbers": [int(n) for n in df["number"]],
        "states": [str(s) for s in df["state"]],
        "mine": [t.number for t in exp.study.get_trials(deepcopy=False)
                 if str(t.user_attrs.get("runner", "")).endswith(me) and t.state.is_finished()
                 and t.user_attrs.get("hpo_state") == "complete"],
        "best": exp.best.number,
        "best_score": exp.best.score,
    }), flush=True)


if __name__ == "__main__":
    main()
