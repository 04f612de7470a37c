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

With `OFFICERTRAK_ACTIONS_LOG=<file>` set, it also writes each distinct IAM action a caller needed,
as one JSON line `{"principal", "action", "resource"}`: the principal is the access key id of the
request's signature (the local stack signs each function's requests with the function's logical id),
the resource names what the action was applied to (a table, index, key, pool, queue, bucket, secret
or sender), never a value from the request's data. `cargo xtask test` compares these lines with what
each function declares and the template grants (infra::permissions).

DynamoDB is concurrent and moto is not, so the contention production meets is modelled here (on by
default; `OFFICERTRAK_TRANSACTION_MS=0` and `OFFICERTRAK_PARTITION_WRITE_UNITS=0` turn it off):

- A TransactWriteItems holds the items it names for `OFFICERTRAK_TRANSACTION_MS` (default 10 ms)
  from its arrival, and its answer comes when that time is up. It is still applied at once, in turn
  with everything else; only the holding is modelled. One that moto cancels (a failed condition)
  releases its items and answers at once.
- A transaction (TransactWriteItems or TransactGetItems) that names an item a TransactWriteItems
  holds is cancelled (TransactionCanceledException, reason `TransactionConflict` at that item, `None`
  elsewhere) and holds nothing.
- A PutItem, UpdateItem or DeleteItem of a held item is refused with TransactionConflictException.
- Each partition (table and partition key) takes `OFFICERTRAK_PARTITION_WRITE_UNITS` write units a
  second (default 1,000, DynamoDB's documented per-partition limit; a token bucket holding one
  second's worth): a single write costs a unit per KB of item, a transactional one twice that. Past
  it, a single write is ProvisionedThroughputExceededException and a transaction is cancelled with
  `ThrottlingError` at the items of the exhausted partition.
- Not modelled: a TransactGetItems holding items against a later TransactWriteItems, read
  throttling, BatchWriteItem conflicts, adaptive capacity and partition splits, table-level limits,
  idempotency tokens of transactions.
`GET /_officertrak/contention` answers what was refused so far and the settings; `POST` there with
`{"transaction_ms": n, "partition_write_units": n}` changes the settings (a test's own emulator).

moto's `Query` sorts every item of the table before it looks for the partition asked for, so each
Query costs the whole table: setting up 5,000 officers (each adds items, each set-up Queries) took
hours. While a Query runs, the table's items are handed to it without that sort, and a Query of the
base table is handed only its own partition (moto keeps items by partition key). The answer is the
same: moto still filters and sorts what it is handed, by the index's keys or the range key.
"""

import copy
import inspect
import io
import json
import math
import os
import re
import sys
import threading
import time
import uuid

import moto.dynamodb.models as dynamodb_models
from moto.dynamodb.models import DynamoDBBackend, Table
from moto.moto_server.werkzeug_app import DomainDispatcherApplication
from moto.server import main

_lock = threading.Lock()
_handle = DomainDispatcherApplication.__call__


_ACTIONS_LOG = os.environ.get("OFFICERTRAK_ACTIONS_LOG")
_seen_actions = set()

# X-Amz-Target prefixes of the JSON-protocol services the functions call, and their IAM prefix.
_TARGET_SERVICES = {
    "DynamoDB_20120810": "dynamodb",
    "TrentService": "kms",
    "AWSCognitoIdentityProviderService": "cognito-idp",
    "AmazonSQS": "sqs",
    "secretsmanager": "secretsmanager",
}

# The DynamoDB operations whose IAM action is named per item, not after the operation.
_TRANSACT_WRITE_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}


def _principal(environ):
    match = re.search(r"Credential=([^/]+)/", environ.get("HTTP_AUTHORIZATION", ""))
    return match.group(1) if match else None


def _body(environ):
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def _dynamodb_actions(operation, request):
    table = request.get("TableName")
    if operation == "TransactWriteItems":
        for entry in request.get("TransactItems", []):
            for kind, item in entry.items():
                yield _TRANSACT_WRITE_ACTIONS.get(kind, kind), item.get("TableName")
    elif operation == "TransactGetItems":
        for entry in request.get("TransactItems", []):
            yield "GetItem", entry.get("Get", {}).get("TableName")
    elif operation in ("BatchGetItem", "BatchWriteItem"):
        for name in request.get("RequestItems", {}):
            yield operation, name
    elif request.get("IndexName"):
        yield operation, f"{table}/index/{request['IndexName']}"
    else:
        yield operation, table


def _actions(environ):
    """The IAM actions (with their resource) a request needs, as far as the functions use them."""
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    method = environ.get("REQUEST_METHOD", "")
    path = environ.get("PATH_INFO", "")
    if "." in target:
        prefix, operation = target.split(".", 1)
        service = _TARGET_SERVICES.get(prefix)
        if service is None:
            return
        try:
            request = json.loads(_body(environ) or b"{}")
        except ValueError:
            request = {}
        if service == "dynamodb":
            for action, resource in _dynamodb_actions(operation, request):
                yield f"dynamodb:{action}", resource
        elif service == "kms":
            key = request.get("KeyId") or request.get("DestinationKeyId") or ""
            if operation == "ReEncrypt":
                yield "kms:ReEncryptFrom", request.get("SourceKeyId") or key
                yield "kms:ReEncryptTo", request.get("DestinationKeyId") or key
            else:
                yield f"kms:{operation}", key
        elif service == "cognito-idp":
            yield f"cognito-idp:{operation}", request.get("UserPoolId", "")
        elif service == "sqs":
            yield f"sqs:{operation}", request.get("QueueUrl", "")
        else:
            yield f"secretsmanager:{operation}", request.get("SecretId", "")
    elif path == "/v2/email/outbound-emails" and method == "POST":
        try:
            request = json.loads(_body(environ) or b"{}")
        except ValueError:
            request = {}
        yield "ses:SendEmail", request.get("FromEmailAddress", "")
        if request.get("ConfigurationSetName"):
            yield "ses:SendEmail", f"configuration-set/{request['ConfigurationSetName']}"
    elif environ.get("HTTP_AUTHORIZATION", "").find("/s3/aws4_request") >= 0:
        parts = path.lstrip("/").split("/")
        actions = {"GET": "s3:GetObject", "PUT": "s3:PutObject", "DELETE": "s3:DeleteObject"}
        if method in actions and len(parts) > 1:
            # The bucket and the key's first segment: the prefix a grant names (`inbound/*`).
            prefix = f"{parts[1]}/*" if len(parts) > 2 else "*"
            yield actions[method], f"{parts[0]}/{prefix}"


def _record_actions(environ):
    principal = _principal(environ)
    if principal is None:
        return
    for action, resource in _actions(environ):
        line = (principal, action, resource or "")
        if line in _seen_actions:
            continue
        _seen_actions.add(line)
        with open(_ACTIONS_LOG, "a", encoding="utf-8") as log:
            log.write(json.dumps({"principal": line[0], "action": line[1], "resource": line[2]}) + "\n")


_settings = {
    "transaction_ms": float(os.environ.get("OFFICERTRAK_TRANSACTION_MS", "10")),
    "partition_write_units": float(os.environ.get("OFFICERTRAK_PARTITION_WRITE_UNITS", "1000")),
}
_refused = {"transaction_conflicts": 0, "write_conflicts": 0, "throttled": 0, "transactions": 0}
# Held items: (table, key as JSON) -> the monotonic time the holding transaction ends.
_held = {}
# Write buckets: (table, partition key as JSON) -> [tokens, last refill time].
_buckets = {}
_key_schemas = {}
_CONTROL_PATH = "/_officertrak/contention"
_SINGLE_WRITES = {"PutItem", "UpdateItem", "DeleteItem"}
_TRANSACTIONS = {"TransactWriteItems", "TransactGetItems"}


def _key_schema(table_name):
    """(hash key, range key or None) of `table_name`, from moto's own tables."""
    if table_name not in _key_schemas:
        from moto.dynamodb.models import dynamodb_backends

        for regions in dynamodb_backends.values():
            for backend in regions.values():
                table = backend.tables.get(table_name)
                if table is not None:
                    _key_schemas[table_name] = (table.hash_key_attr, table.range_key_attr)
    return _key_schemas.get(table_name)


def _identity(table_name, attributes):
    """(item identity, partition identity) of an item or key, or None when the table is unknown."""
    schema = _key_schema(table_name)
    if schema is None:
        return None
    hash_key, range_key = schema
    key = {hash_key: attributes.get(hash_key)}
    if range_key is not None:
        key[range_key] = attributes.get(range_key)
    return (
        (table_name, json.dumps(key, sort_keys=True)),
        (table_name, json.dumps(attributes.get(hash_key), sort_keys=True)),
    )


def _targets(operation, request):
    """[(item identity, partition identity, write units)] of a write or transaction request."""
    targets = []
    if operation in _SINGLE_WRITES:
        attributes = request.get("Item") or request.get("Key") or {}
        identity = _identity(request.get("TableName"), attributes)
        if identity:
            size = len(json.dumps(request.get("Item") or {}))
            targets.append((*identity, max(1, math.ceil(size / 1024))))
        return targets
    for entry in request.get("TransactItems", []):
        kind, op = next(iter(entry.items()), (None, {}))
        attributes = op.get("Item") or op.get("Key") or {}
        identity = _identity(op.get("TableName"), attributes)
        if identity is None:
            targets.append(None)
            continue
        units = 0 if kind in ("Get", "ConditionCheck") else 2 * max(1, math.ceil(len(json.dumps(op.get("Item") or {})) / 1024))
        targets.append((*identity, units))
    return targets


def _take_units(partition, units, now):
    """Takes `units` from the partition's bucket; False when it has not got them."""
    rate = _settings["partition_write_units"]
    if rate <= 0 or units == 0:
        return True
    tokens, last = _buckets.get(partition, (rate, now))
    tokens = min(rate, tokens + (now - last) * rate)
    if tokens < units:
        _buckets[partition] = (tokens, now)
        return False
    _buckets[partition] = (tokens - units, now)
    return True


class _Refusal(list):
    """The complete body of an answer that refuses a request (start_response was called)."""


def _error(start_response, error_type, message, extra=None):
    body = {"__type": f"com.amazonaws.dynamodb.v20120810#{error_type}", "message": message}
    body.update(extra or {})
    data = json.dumps(body).encode()
    start_response(
        "400 Bad Request",
        [
            ("Content-Type", "application/x-amz-json-1.0"),
            ("Content-Length", str(len(data))),
            ("x-amzn-RequestId", str(uuid.uuid4())),
        ],
    )
    return _Refusal([data])


def _contend(operation, request, start_response):
    """Under the lock: the refusal of a request that meets held items or an exhausted partition (an
    answer to send), or the items it holds from now on (a list, maybe empty)."""
    now = time.monotonic()
    for item in [item for item, until in _held.items() if until <= now]:
        del _held[item]
    targets = _targets(operation, request)
    if operation in _SINGLE_WRITES:
        for item, partition, units in targets:
            if item in _held:
                _refused["write_conflicts"] += 1
                return _error(
                    start_response,
                    "TransactionConflictException",
                    "Transaction is ongoing for the item",
                )
            if not _take_units(partition, units, now):
                _refused["throttled"] += 1
                return _error(
                    start_response,
                    "ProvisionedThroughputExceededException",
                    "The level of configured provisioned throughput for the table was exceeded. "
                    "Consider increasing your provisioning level with the UpdateTable API.",
                )
        return []
    _refused["transactions"] += 1
    reasons = []
    for target in targets:
        if target is not None and target[0] in _held:
            reasons.append({"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"})
        else:
            reasons.append({"Code": "None"})
    if any(r["Code"] == "TransactionConflict" for r in reasons):
        _refused["transaction_conflicts"] += 1
    else:
        taken = []
        for index, target in enumerate(targets):
            if target is None:
                continue
            if _take_units(target[1], target[2], now):
                taken.append(target)
            else:
                reasons[index] = {"Code": "ThrottlingError", "Message": "Throughput exceeds the current capacity of the partition."}
        if any(r["Code"] == "ThrottlingError" for r in reasons):
            _refused["throttled"] += 1
            # A cancelled transaction wrote nothing: the units it took go back.
            for _, partition, units in taken:
                tokens, last = _buckets[partition]
                _buckets[partition] = (tokens + units, last)
    if any(r["Code"] != "None" for r in reasons):
        codes = ", ".join(r["Code"] for r in reasons)
        return _error(
            start_response,
            "TransactionCanceledException",
            f"Transaction cancelled, please refer cancellation reasons for specific reasons [{codes}]",
            {"CancellationReasons": reasons},
        )
    hold_ms = _settings["transaction_ms"]
    if hold_ms <= 0 or operation != "TransactWriteItems":
        return []
    until = now + hold_ms / 1000
    items = [target[0] for target in targets if target is not None]
    for item in items:
        _held[item] = until
    return items


def _control(environ, start_response):
    if environ.get("REQUEST_METHOD") == "POST":
        try:
            changes = json.loads(_body(environ) or b"{}")
            for name in ("transaction_ms", "partition_write_units"):
                if name in changes:
                    _settings[name] = float(changes[name])
        except (ValueError, TypeError) as error:
            start_response("400 Bad Request", [("Content-Type", "text/plain")])
            return [str(error).encode()]
    data = json.dumps({**_refused, "settings": _settings}).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


def _dynamodb_operation(environ):
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target.startswith("DynamoDB_20120810."):
        operation = target.split(".", 1)[1]
        if operation in _SINGLE_WRITES or operation in _TRANSACTIONS:
            return operation
    return None


def _one_at_a_time(self, environ, start_response):
    if environ.get("PATH_INFO") == _CONTROL_PATH:
        with _lock:
            return _control(environ, start_response)
    if environ.get("HTTP_X_AMZ_TARGET", "") in ("DynamoDB_20120810.CreateTable", "DynamoDB_20120810.DeleteTable"):
        _key_schemas.clear()
    operation = _dynamodb_operation(environ)
    held = []
    answer = {}

    def remember_status(status, headers, exc_info=None):
        answer["status"] = status
        return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

    with _lock:
        if _ACTIONS_LOG:
            _record_actions(environ)
        if operation is not None:
            try:
                request = json.loads(_body(environ) or b"{}")
            except ValueError:
                request = {}
            outcome = _contend(operation, request, start_response)
            if isinstance(outcome, _Refusal):
                return outcome
            held = outcome
        # moto answers with complete bodies, so the response is built inside the lock.
        response = list(_handle(self, environ, remember_status))
        if held and not answer.get("status", "").startswith("200"):
            # Cancelled by moto (a failed condition): it held its items only while it ran.
            for item in held:
                _held.pop(item, None)
            held = []
    if held:
        # The transaction "runs" until its items are released: its answer comes then.
        time.sleep(_settings["transaction_ms"] / 1000)
        with _lock:
            now = time.monotonic()
            for item in held:
                if _held.get(item, now + 1) <= now:
                    del _held[item]
    return response


DomainDispatcherApplication.__call__ = _one_at_a_time

# The Query running now, as (table, index name, partition key); requests are serialised, so one.
_query_scope = None
_table_query = Table.query
_table_all_items = Table.all_items
_query_parameters = inspect.signature(_table_query)


def _query_in_scope(self, *args, **kwargs):
    global _query_scope
    bound = _query_parameters.bind(self, *args, **kwargs)
    _query_scope = (self, bound.arguments.get("index_name"), bound.arguments.get("hash_key"))
    try:
        return _table_query(self, *args, **kwargs)
    finally:
        _query_scope = None


def _items_for_query(self):
    """`Table.all_items`, but during a Query of this table: the base table's Query gets its partition
    only, an index's Query every item unsorted (moto sorts the matching ones itself)."""
    scope = _query_scope
    if scope is None or scope[0] is not self:
        return _table_all_items(self)
    _, index_name, hash_key = scope
    if index_name:
        partitions = list(self.items.values())
    else:
        partition = self.items.get(hash_key)
        partitions = [] if partition is None else [partition]
    if self.range_key_attr:
        return [item for partition in partitions for item in partition.values()]
    return partitions


Table.query = _query_in_scope
Table.all_items = _items_for_query


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
