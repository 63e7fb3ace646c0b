"""Run one command with stdin from a file; print its wall time and peak RSS as JSON.

The benchmark runs each target through this wrapper so that ``ru_maxrss`` of
``RUSAGE_CHILDREN`` is the target's own peak memory (not the benchmark's), and the
target reads its input straight from the file descriptor, not through a Python pipe.

    python benchmarks/measure.py --stdin IN --stdout OUT --stderr ERR -- command args...
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def measure(command: list[str], stdin: str, stdout: str, stderr: str) -> dict[str, float]:
    """Run ``command`` to its end; return exit code, start/end epoch and peak RSS."""
    with open(stdin, "rb") as src, open(stdout, "wb") as out, open(stderr, "wb") as err:
        started = time.time()
        clock = time.perf_counter()
        code = subprocess.call(command, stdin=src, stdout=out, stderr=err)
        wall = time.perf_counter() - clock
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "returncode": code,
        "started": started,
        "wall_s": wall,
        "peak_rss_bytes": usage.ru_maxrss * 1024,  # Linux reports KiB
        "cpu_s": usage.ru_utime + usage.ru_stime,
    }


def main(argv: list[str] | None = None) -> int:
    """Parse the wrapper's options, run the command, print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stdin", required=True)
    parser.add_argument("--stdout", required=True)
    parser.add_argument("--stderr", required=True)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command to run")
    print(json.dumps(measure(command, args.stdin, args.stdout, args.stderr)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
