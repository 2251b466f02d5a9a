"""How often a 2-process gloo run aborts at exit, with and without ``distributed.finish_process``.

Each trial is a ``torchrun`` of this file: a DistributedDataParallel step, one ``all_gather_rows``,
then rank 0 keeps working for a moment while rank 1 reaches its end, as in a recipe run where rank 0
writes the results. A trial fails when torchrun exits non-zero (a rank killed by SIGABRT: "terminate
called without an active exception", from a gloo worker thread asking for the GIL while the
interpreter tears itself down). Prints the failure counts as JSON. Usage::

    python benchmarks/torchrun_exit.py [--trials 60]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time


def _trial() -> None:
    import numpy as np
    import torch

    from genrec import distributed

    assert distributed.init_from_env("cpu")
    model = torch.nn.Linear(4, 1)
    step = distributed.objective(model, lambda batch: model(batch).sum())
    for _ in range(3):
        step(torch.randn(8, 4)).backward()
    distributed.all_gather_rows(np.arange(3))
    if distributed.is_main():
        time.sleep(0.5)
    if os.environ.get("FINISH") == "1":
        distributed.finish_process()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=60)
    trials = parser.parse_args().trials
    failures = {}
    for finish in ("0", "1"):
        env = {**os.environ, "OMP_NUM_THREADS": "1", "FINISH": finish}
        command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", __file__, "--trial"]
        failed = sum(subprocess.run(command, env=env, capture_output=True).returncode != 0 for _ in range(trials))
        failures["finish_process" if finish == "1" else "plain exit"] = f"{failed}/{trials}"
    print(json.dumps({"failed trials": failures}))


if __name__ == "__main__":
    if sys.argv[1:] == ["--trial"]:
        _trial()
    else:
        main()
