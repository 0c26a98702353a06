"""Starts moto (pinned 5.2.5) with the fixes in `moto_patches/`: correct under concurrent
clients (one request lock, item-level transaction rollback) and fast as tables and streams
grow (indexed GSI queries, O(1) Kinesis puts, no Docker invocation attempts, no per-request
rework).

It serves moto's WSGI application with waitress instead of moto_server's werkzeug
development server: a thread per connection and a log line per request made werkzeug about a
third of the emulator's CPU time under our load (py-spy), and waitress answered the same
requests ~40 % faster. `GET /_orders/requests` counts requests per service and operation
(`DELETE` resets them).

Usage: python scripts/moto_server.py -H 127.0.0.1 -p 4566
"""

import argparse
import os
import sys

import moto.server
import waitress

import moto_patches

moto_patches.install_all()


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=4566)
    args = parser.parse_args(argv)
    # moto builds some URLs (queue URLs, Lambda's MOTO_HOST) from these.
    os.environ.setdefault("MOTO_PORT", str(args.port))
    app = moto.server.DomainDispatcherApplication(moto.server.create_backend_app)
    # Requests run one at a time under the lock anyway: threads only overlap socket I/O.
    # Many clients keep connections open (every function instance has its own pool).
    waitress.serve(app, host=args.host, port=args.port, threads=4, connection_limit=2000,
                   asyncore_use_poll=True, channel_timeout=300, ident="moto", _quiet=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
