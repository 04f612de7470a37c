"""A Saturday on OfficerTRAK, for locust (driven by tests/e2e/load.rs, which sets the people up and
checks the invariants afterwards; `cargo xtask load` runs it at full size).

Who calls, in what proportion (the class weights): customers quoting, booking and reading their
requests; officers listing open shifts, claiming the same few shifts, reading, accepting and
releasing their assignments and trying to check in; dispatchers auto-assigning; staff reading their
queues; anonymous apps sending telemetry and reading the policy; now and then a privacy request.
Every virtual user comes from an address of its own (X-Forwarded-For, which the local gateway
trusts), as real phones would.

Input: OFFICERTRAK_LOAD_FIXTURE (JSON written by the test). Output: OFFICERTRAK_LOAD_REPORT, JSON
with per route calls, 2xx/4xx/5xx/other (no answer) and p50/p95/p99 latency, every booking answered
201 (to check it afterwards), and the first 5xx answers (route, status, problem type and instance).
"""

import json
import os
import random
import threading
import uuid

from locust import HttpUser, between, events, task

with open(os.environ["OFFICERTRAK_LOAD_FIXTURE"], encoding="utf-8") as fixture_file:
    FIXTURE = json.load(fixture_file)

_lock = threading.Lock()
_times = {}
_statuses = {}
_bookings = []
_unanswered_bookings = []
_failures = []
# A phone gives up on a call after this long; the answer it never saw is what tests/e2e/load.rs
# replays (with the same Idempotency-Key) before it checks the bookings.
TIMEOUT_SECONDS = 30


@events.request.add_listener
def _count(request_type, name, response_time, response_length, response=None, exception=None, **_):
    status = getattr(response, "status_code", 0) or 0
    bucket = {2: "2xx", 4: "4xx", 5: "5xx"}.get(status // 100, "other")
    with _lock:
        _times.setdefault(name, []).append(response_time)
        counts = _statuses.setdefault(name, {"2xx": 0, "4xx": 0, "5xx": 0, "other": 0})
        counts[bucket] += 1
        if bucket in ("5xx", "other") and len(_failures) < 50:
            try:
                problem = response.json() if response is not None else {}
            except ValueError:
                problem = {}
            if not isinstance(problem, dict):
                problem = {}
            _failures.append(
                {
                    "route": name,
                    "status": status,
                    "type": problem.get("type"),
                    "instance": problem.get("instance"),
                    "exception": str(exception) if exception else None,
                }
            )


def _percentile(sorted_times, fraction):
    if not sorted_times:
        return 0.0
    index = min(len(sorted_times) - 1, int(round(fraction * (len(sorted_times) - 1))))
    return float(sorted_times[index])


@events.quitting.add_listener
def _write_report(environment, **_):
    routes = {}
    with _lock:
        for name, times in _times.items():
            ordered = sorted(times)
            routes[name] = {
                "calls": len(ordered),
                **_statuses[name],
                "p50_ms": _percentile(ordered, 0.50),
                "p95_ms": _percentile(ordered, 0.95),
                "p99_ms": _percentile(ordered, 0.99),
            }
        report = {
            "routes": routes,
            "bookings": list(_bookings),
            "unanswered_bookings": list(_unanswered_bookings),
            "failures": list(_failures),
        }
    with open(os.environ["OFFICERTRAK_LOAD_REPORT"], "w", encoding="utf-8") as out:
        json.dump(report, out)
    # Every answer counts in the report; locust's own exit code says nothing more.
    environment.process_exit_code = 0


class _Caller(HttpUser):
    abstract = True
    # A person on a phone acts every 8 to 16 seconds. (With 1 to 3 s, 200 users asked the local
    # stack, one serialised emulator and debug builds on 2 cores, for about 100 calls a second; it
    # serves about 17, and a third of the calls waited past their 30 s.)
    wait_time = between(8, 16)

    def on_start(self):
        self.address = f"10.{random.randint(0, 255)}.{random.randint(0, 255)}.{random.randint(1, 254)}"
        self.token = None

    def call(self, method, path, name, **kwargs):
        headers = {"X-Forwarded-For": self.address, "X-App-Version": random.choice(["ios/4.1.0", "android/4.1.0", "web/2026.12"])}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        headers.update(kwargs.pop("headers", {}))
        kwargs.setdefault("timeout", TIMEOUT_SECONDS)
        with self.client.request(method, path, name=name, headers=headers, catch_response=True, **kwargs) as response:
            # A refusal (4xx) is an answer the product gives on purpose; the report tells them apart.
            response.success()
            return response


class Customer(_Caller):
    weight = 4

    def on_start(self):
        super().on_start()
        self.index = random.randrange(len(FIXTURE["customers"]))
        self.token = FIXTURE["customers"][self.index]["token"]
        self.mine = []

    @task(3)
    def quote(self):
        self.call("POST", "/v1/quotes", "POST /v1/quotes", json=FIXTURE["quote"])

    @task(1)
    def book(self):
        key = str(uuid.uuid4())
        response = self.call(
            "POST",
            "/v1/service-requests",
            "POST /v1/service-requests",
            json=FIXTURE["booking"],
            headers={"Idempotency-Key": key},
        )
        if response.status_code == 201:
            request_id = response.json()["requests"][0]["request_id"]
            self.mine.append(request_id)
            with _lock:
                _bookings.append((self.index, request_id))
        elif not response.status_code or response.status_code >= 500:
            # No answer, or one that does not say what happened: the booking may exist.
            with _lock:
                _unanswered_bookings.append((self.index, key))

    @task(3)
    def list_mine(self):
        self.call("GET", "/v1/service-requests", "GET /v1/service-requests")

    @task(2)
    def read_one(self):
        if self.mine:
            request_id = random.choice(self.mine)
            self.call("GET", f"/v1/service-requests/{request_id}", "GET /v1/service-requests/{id}")

    @task(1)
    def me(self):
        self.call("GET", "/v1/me", "GET /v1/me")


class Officer(_Caller):
    weight = 4

    def on_start(self):
        super().on_start()
        self.token = random.choice(FIXTURE["officers"])["token"]

    def assignments(self):
        response = self.call("GET", "/v1/providers/me/assignments", "GET /v1/providers/me/assignments")
        try:
            return response.json().get("items", []) if response.status_code == 200 else []
        except ValueError:
            return []

    @task(4)
    def open_shifts(self):
        self.call("GET", "/v1/providers/me/open-shifts", "GET /v1/providers/me/open-shifts")

    @task(3)
    def claim(self):
        request_id = random.choice(FIXTURE["requests"])
        self.call("POST", f"/v1/service-requests/{request_id}/claims", "POST /v1/service-requests/{id}/claims")

    @task(2)
    def work_an_assignment(self):
        mine = self.assignments()
        if not mine:
            return
        assignment = random.choice(mine)
        action = {
            "assigned": random.choice(["accept", "decline"]),
            "accepted": random.choice(["release", "check-in", "check-in", "check-in"]),
            "checked_in": "check-out",
        }.get(assignment.get("status"))
        if action:
            self.call(
                "POST",
                f"/v1/assignments/{assignment['assignment_id']}/{action}",
                f"POST /v1/assignments/{{id}}/{action}",
            )


class Dispatcher(_Caller):
    weight = 1

    def on_start(self):
        super().on_start()
        self.token = FIXTURE["dispatcher"]

    @task(2)
    def auto_assign(self):
        request_id = random.choice(FIXTURE["requests"])
        self.call(
            "POST",
            f"/v1/service-requests/{request_id}/auto-assign",
            "POST /v1/service-requests/{id}/auto-assign",
        )

    @task(3)
    def staffing(self):
        request_id = random.choice(FIXTURE["requests"])
        self.call(
            "GET",
            f"/v1/service-requests/{request_id}/assignments",
            "GET /v1/service-requests/{id}/assignments",
        )


class Staff(_Caller):
    weight = 1

    @task(1)
    def usage(self):
        self.token = FIXTURE["ops"]
        self.call("GET", "/v1/admin/usage", "GET /v1/admin/usage")

    @task(2)
    def privacy_queue(self):
        self.token = FIXTURE["privacy_officer"]
        self.call("GET", "/v1/admin/privacy-requests", "GET /v1/admin/privacy-requests")

    @task(2)
    def support_queue(self):
        self.token = FIXTURE["support"]
        self.call("GET", "/v1/support/inquiries", "GET /v1/support/inquiries")


class Anonymous(_Caller):
    weight = 3

    @task(3)
    def policy(self):
        self.call("GET", "/v1/privacy/policy", "GET /v1/privacy/policy")

    @task(3)
    def telemetry(self):
        self.call(
            "POST",
            "/v1/telemetry",
            "POST /v1/telemetry",
            json={"browser": "safari", "browser_major": 18, "os": "ios", "javascript": True, "screen_width": 390},
        )

    @task(1)
    def purposes(self):
        self.call("GET", "/v1/privacy/purposes", "GET /v1/privacy/purposes")


class PrivacyRequester(_Caller):
    """Now and then a customer asks for a copy of their data."""

    weight = 1
    wait_time = between(20, 40)

    def on_start(self):
        super().on_start()
        self.token = random.choice(FIXTURE["customers"])["token"]

    @task
    def ask_for_access(self):
        self.call(
            "POST",
            "/v1/privacy-requests",
            "POST /v1/privacy-requests",
            json={"type": "access", "jurisdiction": "ccpa"},
            headers={"Idempotency-Key": str(uuid.uuid4())},
        )
