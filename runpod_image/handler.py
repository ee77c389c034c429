"""RunPod serverless worker for hpo-nb: one job = one trial.

The worker lives in the package (``hpo_nb.executors.runpod.worker``); this file only starts it,
where RunPod images conventionally keep their handler.
"""

from hpo_nb.executors.runpod.worker import main

if __name__ == "__main__":
    main()
