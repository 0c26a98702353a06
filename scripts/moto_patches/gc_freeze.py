"""The emulator's data is moved out of reach of Python's full garbage collections.

A table of 100k orders is millions of Python objects (an item, a `DynamoType` per attribute,
nested maps and lists), and CPython's full collection walks every tracked object: once the
heap had grown by a quarter, one listing request in the benchmark waited 3.0 s (and 0.7–1.2 s
at 10k orders) behind a collection that found nothing to free — items hold no reference
cycles, refcounting frees them. Every 2,000 requests a young collection clears recent cyclic
garbage (expression trees link to their parents) and `gc.freeze()` moves what survives to the
permanent generation, so full collections only walk what is newer. What was frozen is still
freed by refcounting when deleted; only cyclic garbage older than that (a few cached
expression trees dropped later) is never collected: kilobytes, not growth with the data.
"""

import gc
import itertools

from .serialise import AFTER_REQUEST

EVERY = 2_000
_requests = itertools.count(1)


def after_request(_handler):
    if next(_requests) % EVERY == 0:
        gc.collect(1)
        gc.freeze()


def install():
    AFTER_REQUEST.append(after_request)
