"""Runs moto's server (same arguments as `moto_server`) handling one request at a time, with
TransactWriteItems rolled back item by item.

moto's DynamoDB TransactWriteItems deep-copies every table it touches and, when the transaction
fails, restores that copy. Two consequences for our tests, which run transactions concurrently on
purpose (duplicate registrations, idempotent retries, 100 officers claiming one shift):

- Under moto's threaded server a concurrent request can make the copy fail (an HTML 500) or be undone
  by another transaction's rollback. So requests are serialised: connections are still accepted
  concurrently, only the application call is locked.
- Each transaction costs a copy of the whole table, so a busy test run slows down quadratically
  (a run of 300 claim transactions on a table of a few thousand encrypted items took minutes). So
  the copy is replaced by an undo log of the items the transaction names: before it runs, each
  target item's old state is saved; on cancellation exactly those items are put back. Because
  requests are serialised, nothing else can change them in between: the semantics DynamoDB gives
  (all or nothing, conditions checked on current items) are unchanged.
"""

import copy
import sys
import threading

import moto.dynamodb.models as dynamodb_models
from moto.dynamodb.models import DynamoDBBackend, Table
from moto.moto_server.werkzeug_app import DomainDispatcherApplication
from moto.server import main

_lock = threading.Lock()
_handle = DomainDispatcherApplication.__call__


def _one_at_a_time(self, environ, start_response):
    with _lock:
        # moto answers with complete bodies, so the response is built inside the lock.
        return list(_handle(self, environ, start_response))


DomainDispatcherApplication.__call__ = _one_at_a_time


class _TablesAreNotCopied:
    """Stands in for the `copy` module inside moto's DynamoDB backend: a whole Table is "copied" as
    itself (the undo log below restores what a cancelled transaction changed); everything else is
    copied as before."""

    @staticmethod
    def deepcopy(value, memo=None):
        if isinstance(value, Table):
            return value
        return copy.deepcopy(value, memo)


dynamodb_models.copy = _TablesAreNotCopied()
_transact = DynamoDBBackend.transact_write_items


def _target_key(backend, op_type, op):
    table = backend.get_table(op["TableName"])
    if op_type == "Put":
        attrs = op["Item"]
        key = {table.hash_key_attr: attrs[table.hash_key_attr]}
        if table.range_key_attr is not None:
            key[table.range_key_attr] = attrs[table.range_key_attr]
        return key
    return op["Key"]


def _transact_with_undo_log(self, transact_items):
    saved = []
    for entry in transact_items:
        try:
            op_type, op = next(iter(entry.items()))
            key = _target_key(self, op_type, op)
            current = self.get_item(op["TableName"], key)
        except Exception:  # malformed entries are reported by moto's own code below
            continue
        old = copy.deepcopy(current.to_json()["Attributes"]) if current is not None else None
        saved.append((op["TableName"], key, old))
    try:
        _transact(self, transact_items)
    except Exception:
        for table_name, key, old in reversed(saved):
            # Restore every item even if one restore fails; the transaction's own error is what the
            # client must see.
            try:
                if old is None:
                    if self.get_item(table_name, key) is not None:
                        self.delete_item(table_name, key)
                else:
                    self.put_item(table_name, old)
            except Exception as error:  # noqa: BLE001
                print(f"serial_moto: could not restore an item after a cancelled transaction: {error}", file=sys.stderr)
        raise


DynamoDBBackend.transact_write_items = _transact_with_undo_log

if __name__ == "__main__":
    main(sys.argv[1:])
