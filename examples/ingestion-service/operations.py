"""What POST /ingest does with an authentic request: an upsert or a delete of one document.

Operations on one document run one at a time (a per-document lock, held from the idempotency
check to the index write): a delete that arrives while an upsert of the same document is still
downloading waits for it, so it cannot be overtaken by it. Different documents run in parallel.
"""
import collections
import contextlib
import itertools
import json
import logging
import threading
import time

from contract import PermanentError, Settings, TransientError, download, post_callback
from extract import analyze, chunk_text

log = logging.getLogger("ingestion-service")
OPERATIONS = ("upsert", "delete")


class Control:
    """Knobs for tests and demos: set by flags (--fail-first, --delay-ms...) and POST /_control."""

    def __init__(self):
        self.lock = threading.Lock()
        self.fail_next = 0
        self.fail_status = 503
        self.fail_until = 0.0  # time.monotonic() before which every request is answered fail_status
        self.delay_ms = 0
        self.delete_delay_ms = None  # None: like delay_ms
        self.write_faults = 0
        self.pipeline_version = "reference-1"
        self.received = collections.deque(maxlen=1000)
        self.active = {}  # token -> the entry of a request being worked on (or waiting for its document)
        self.tokens = itertools.count()

    def enter(self, entry):
        """Registers a request in progress; notes in `entry` whether another one for the same
        document was in progress already (Quire promises at most one per document)."""
        with self.lock:
            entry["overlapped"] = any(e["documentId"] == entry["documentId"] for e in self.active.values())
            token = next(self.tokens)
            self.active[token] = entry
            return token

    def leave(self, token):
        with self.lock:
            self.active.pop(token, None)

    def take_failure(self):
        """The status to answer instead of working (an injected outage), or None."""
        with self.lock:
            if self.fail_next > 0:
                self.fail_next -= 1
                return self.fail_status
            if time.monotonic() < self.fail_until:
                return self.fail_status
            return None

    def take_write_fault(self):
        with self.lock:
            if self.write_faults <= 0:
                return False
            self.write_faults -= 1
            return True

    def delay_for(self, operation):
        with self.lock:
            ms = self.delete_delay_ms if operation == "delete" and self.delete_delay_ms is not None else self.delay_ms
        return ms / 1000

    def record(self, **entry):
        with self.lock:
            self.received.append({"at": time.time(), **entry})

    def state(self, with_received=True):
        with self.lock:
            out = {"failNext": self.fail_next, "failStatus": self.fail_status, "delayMs": self.delay_ms,
                   "deleteDelayMs": self.delete_delay_ms, "writeFaults": self.write_faults,
                   "failForMs": max(0, round((self.fail_until - time.monotonic()) * 1000)),
                   "pipelineVersion": self.pipeline_version}
            if with_received:
                out["received"] = list(self.received)
                out["active"] = list(self.active.values())
            return out

    def update(self, body):
        """Applies a POST /_control body; ValueError names the first bad field (nothing applied)."""
        if not isinstance(body, dict):
            raise ValueError("body must be a JSON object")
        changes = {}
        for key, attr, low, high in (("failNext", "fail_next", 0, 10 ** 6), ("failStatus", "fail_status", 500, 599),
                                     ("delayMs", "delay_ms", 0, 600000), ("deleteDelayMs", "delete_delay_ms", 0, 600000),
                                     ("writeFaults", "write_faults", 0, 10 ** 6), ("failForMs", "fail_until", 0, 600000)):
            if key not in body:
                continue
            value = body[key]
            if value is None and key == "deleteDelayMs":
                changes[attr] = None
            elif isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ValueError(f"{key} must be an integer from {low} to {high}")
            else:
                changes[attr] = value
        if "pipelineVersion" in body:
            pv = body["pipelineVersion"]
            if not isinstance(pv, str) or not 1 <= len(pv) <= 100:
                raise ValueError("pipelineVersion must be a string of 1 to 100 characters")
            changes["pipeline_version"] = pv
        if body.get("clearReceived") is True:
            changes["received"] = collections.deque(maxlen=1000)
        if "fail_until" in changes:
            changes["fail_until"] = time.monotonic() + changes["fail_until"] / 1000
        with self.lock:
            for attr, value in changes.items():
                setattr(self, attr, value)


class DocumentLocks:
    def __init__(self):
        self._lock = threading.Lock()
        self._locks = {}  # document id -> [lock, holders and waiters]

    @contextlib.contextmanager
    def hold(self, doc_id):
        with self._lock:
            entry = self._locks.setdefault(doc_id, [threading.Lock(), 0])
            entry[1] += 1
        try:
            with entry[0]:
                yield
        finally:
            with self._lock:
                entry[1] -= 1
                if entry[1] == 0:
                    del self._locks[doc_id]


control = Control()
locks = DocumentLocks()
index = None  # an index_store.Index, opened by main()
_running = set()  # Idempotency-Keys of accepted (202) ingestions still being worked on
_running_lock = threading.Lock()


def parse(raw):
    """The payload, checked and completed (operation, document.version); ValueError if malformed."""
    payload = json.loads(raw)
    if not isinstance(payload, dict) or not isinstance(payload.get("document"), dict):
        raise ValueError("document")
    doc = payload["document"]
    payload.setdefault("operation", "upsert")  # senders before issue 20 only upsert
    if payload["operation"] not in OPERATIONS:
        raise ValueError("operation must be upsert or delete")
    for key in ("ingestionId", "callbackUrl"):
        if not isinstance(payload.get(key), str):
            raise ValueError(key)
    if not isinstance(doc.get("id"), str) or not 1 <= len(doc["id"]) <= 255:
        raise ValueError("document.id")
    doc.setdefault("version", 1)  # senders before issue 20 have one version per document
    if isinstance(doc["version"], bool) or not isinstance(doc["version"], int) or doc["version"] < 1:
        raise ValueError("document.version must be an integer >= 1")
    if payload["operation"] == "upsert":
        for key in ("downloadUrl", "sha256"):
            if not isinstance(doc.get(key), str):
                raise ValueError(f"document.{key}")
        if isinstance(doc.get("size"), bool) or not isinstance(doc.get("size"), int):
            raise ValueError("document.size")
    return payload


def _ignored(held, version):
    if held is None:  # removed by another process meanwhile
        return {"chunks": 0, "version": version, "pipelineVersion": control.pipeline_version, "ignored": "older-version"}
    return {"chunks": held["chunks"], "version": held["version"], "pipelineVersion": held["pipelineVersion"], "ignored": "older-version"}


def perform(payload):
    """Does the operation; the result. Raises PermanentError / TransientError / anything else."""
    doc = payload["document"]
    doc_id, version, operation = doc["id"], doc["version"], payload["operation"]
    delay = control.delay_for(operation)
    if delay > 0:
        time.sleep(delay)
    pipeline_version = control.state(with_received=False)["pipelineVersion"]
    if operation == "delete":
        return {"deleted": index.delete(doc_id), "chunks": 0}
    held = index.document(doc_id)
    if held is not None and version < held["version"]:
        return _ignored(held, version)
    data, sha = download(doc)
    result, text = analyze(doc, data, sha)
    chunks = chunk_text(text, Settings.chunk_size)
    stored = index.replace(doc_id, version, chunks, pipeline_version, result, fault=control.take_write_fault())
    if stored is None:  # a newer version got in while this one downloaded
        return _ignored(index.document(doc_id), version)
    result.update(chunks=stored, version=version, pipelineVersion=pipeline_version,
                  replaced=None if held is None else held["version"])
    return result


def entry_of(payload, key):
    doc = payload["document"]
    return {"idempotencyKey": key, "ingestionId": payload["ingestionId"], "operation": payload["operation"],
            "documentId": doc["id"], "version": doc["version"]}


def run_sync(payload, key, entry):
    """(status, body) of a request answered at once."""
    with locks.hold(payload["document"]["id"]):
        cached = index.answer(key)
        if cached is not None:
            control.record(**entry, outcome="replayed", status=cached[0])
            return cached
        try:
            result = perform(payload)
            answer = (200, {"status": "succeeded", "result": result})
            index.remember(key, *answer)
            outcome = "ignored" if "ignored" in result else "succeeded"
        except PermanentError as err:
            answer, outcome = (422, {"status": "failed", "error": str(err)}), "failed"
        except TransientError as err:
            answer, outcome = (503, {"error": str(err)}), "transient"
        except Exception as err:  # noqa: BLE001 - a 5xx: Quire retries, the index was rolled back
            log.exception("ingestion %s crashed", payload["ingestionId"])
            answer, outcome = (500, {"error": f"internal error: {err.__class__.__name__}"}), "error"
    control.record(**entry, outcome=outcome, status=answer[0])
    return answer


def start_async(payload, key, entry, token):
    """(status, body) of a request answered 202 and finished by a callback (which ends `token`)."""
    with _running_lock:
        cached = (202, {"status": "accepted"}) if key in _running else index.answer(key)
        if cached is None:
            _running.add(key)
    if cached is not None:
        control.leave(token)
        control.record(**entry, outcome="replayed", status=cached[0])
        return cached
    control.record(**entry, outcome="accepted", status=202)
    threading.Thread(target=_run_async, args=(payload, key, entry, token), daemon=True).start()
    return 202, {"status": "accepted"}


def _run_async(payload, key, entry, token):
    ingestion_id = payload["ingestionId"]
    try:
        if Settings.callback_delay > 0:
            time.sleep(Settings.callback_delay)
        with locks.hold(payload["document"]["id"]):
            try:
                result = perform(payload)
                body = {"ingestionId": ingestion_id, "status": "succeeded", "result": result}
                index.remember(key, 200, {"status": "succeeded", "result": result})
            except (PermanentError, TransientError) as err:
                body = {"ingestionId": ingestion_id, "status": "failed", "error": str(err)}
            except Exception as err:  # noqa: BLE001 - the callback must always be sent
                log.exception("ingestion %s crashed", ingestion_id)
                body = {"ingestionId": ingestion_id, "status": "failed", "error": f"internal error: {err.__class__.__name__}"}
        control.record(**entry, outcome=f"callback-{body['status']}", status=200 if body["status"] == "succeeded" else 422)
    finally:
        # Done before the callback: Quire may send this document's next operation as soon as it has it.
        control.leave(token)
        with _running_lock:
            _running.discard(key)
    post_callback(payload["callbackUrl"], body)
