"""moto's WSGI application with the fixes in `moto_patches/`, for `moto_server.py` to serve.

Its own module because the server imports it in the process that serves: the patches must be
installed once there, never in the launcher as well (installing one twice wraps a function
in itself). That process writes its pid to $ORDERS_EMULATOR_PIDFILE: it is the one a fault
test freezes with SIGSTOP, and stopping it stops the server.
"""

import os

import moto.server

import moto_patches

moto_patches.install_all()

app = moto.server.DomainDispatcherApplication(moto.server.create_backend_app)

_pidfile = os.environ.get("ORDERS_EMULATOR_PIDFILE")
if _pidfile:
    with open(_pidfile + ".tmp", "w") as f:
        f.write(f"{os.getpid()}\n")
    os.replace(_pidfile + ".tmp", _pidfile)
