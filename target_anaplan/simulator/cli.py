"""`anaplan-simulator --scenario FILE --port N`: run the simulator until interrupted."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from types import FrameType

from target_anaplan.simulator.scenario import EXAMPLE_SCENARIO, ScenarioError
from target_anaplan.simulator.server import Simulator


def main(argv: list[str] | None = None) -> int:
    """Start the simulator, print its URL and its page's on stdout, serve until SIGINT/SIGTERM."""
    parser = argparse.ArgumentParser(prog="anaplan-simulator", description=__doc__)
    parser.add_argument("--scenario", default=str(EXAMPLE_SCENARIO),
                        help="scenario JSON file (default: the packaged example)")  # fmt: skip
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: pick one)")
    parser.add_argument(
        "--log-level",
        default="WARNING",
        type=str.upper,
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="stderr log level (INFO logs every request line)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, stream=sys.stderr)
    try:
        sim = Simulator(args.scenario, port=args.port).start()
    except ScenarioError as exc:
        print(f"anaplan-simulator: invalid scenario: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"anaplan-simulator: cannot listen on port {args.port}: {exc}", file=sys.stderr)
        return 1
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    print(f"anaplan-simulator listening on {sim.url}", flush=True)
    print(f"anaplan-simulator page (what landed, refreshing): {sim.page_url}", flush=True)
    while not stop.wait(0.5):
        pass
    sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
