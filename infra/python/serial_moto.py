"""Runs moto's server (same arguments as `moto_server`) handling one request at a time.

moto's DynamoDB TransactWriteItems deep-copies every table it touches and, when the transaction
fails, restores that copy. Under moto's threaded server a concurrent request can make the copy fail
(an HTML 500) or be undone by another transaction's rollback. Our tests run transactions
concurrently on purpose (duplicate registrations, idempotent retries), so the local stack serialises
requests. Connections are still accepted concurrently; only the application call is locked.
"""

import sys
import threading

from moto.moto_server.werkzeug_app import DomainDispatcherApplication
from moto.server import main

_lock = threading.Lock()
_handle = DomainDispatcherApplication.__call__


def _one_at_a_time(self, environ, start_response):
    with _lock:
        # moto answers with complete bodies, so the response is built inside the lock.
        return list(_handle(self, environ, start_response))


DomainDispatcherApplication.__call__ = _one_at_a_time

if __name__ == "__main__":
    main(sys.argv[1:])
