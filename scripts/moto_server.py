"""Starts moto (pinned 5.2.5) with the fixes in `moto_patches/`: correct under concurrent
clients (one request lock, item-level transaction rollback) and fast as tables and streams
grow (indexed GSI queries, O(1) Kinesis puts, no Docker invocation attempts, no per-request
rework).

It serves moto's WSGI application (`moto_app.py`) with granian, an HTTP server written in
Rust, instead of moto_server's werkzeug development server. Under our load werkzeug's thread
per connection and log line per request took a third of the emulator's CPU; waitress, which
replaced it, still spent 0.34 ms of Python per request parsing HTTP and handing requests
between threads (1.29 → 0.95 ms of emulator CPU per aggregate UpdateItem with granian,
`moto_patches/bench_http.py`: 3,000 requests from 8 connections). One Python thread runs the application: moto's models
are serialised under one lock anyway (`moto_patches/serialise.py`). `GET /_orders/requests`
counts requests per service and operation (`DELETE` resets them).

Usage: python scripts/moto_server.py -H 127.0.0.1 -p 4566 [--pid-file F]
"""

import argparse
import os
import sys
from pathlib import Path

from granian import Granian


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=4566)
    parser.add_argument("--pid-file", help="where the serving process writes its pid")
    args = parser.parse_args(argv)
    # moto builds some URLs (queue URLs, Lambda's MOTO_HOST) from these.
    os.environ.setdefault("MOTO_PORT", str(args.port))
    if args.pid_file:
        os.environ["ORDERS_EMULATOR_PIDFILE"] = os.path.abspath(args.pid_file)
    Granian(
        "moto_app:app",
        address=args.host,
        port=args.port,
        interface="wsgi",
        workers=1,
        blocking_threads=1,
        # Many clients keep connections open (every function instance has its own pool).
        backlog=2048,
        log_access=False,
        working_dir=Path(__file__).resolve().parent,
    ).serve()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
