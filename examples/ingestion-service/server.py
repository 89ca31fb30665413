#!/usr/bin/env python3
"""Reference ingestion backend for Quire (Python 3 standard library only).

Implements the contract in Quire's API.md:
  POST /ingest   signed JSON {ingestionId, pipeline, options, callbackUrl, document: {...}}
                 -> 200 {"status": "succeeded", "result": {...}}    (small files)
                 -> 202 {"status": "accepted"} + a signed callback   (large files, or options.async)
  GET  /health   -> 200 {"status": "ok"}

Signing (both directions):
  X-Quire-Timestamp: <unix seconds>
  X-Quire-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>\n<METHOD>\n<path>\n<raw body>")>
  <path> is the path (plus "?query", if any) of the URL the request is sent to, as the sender was
  given it: the request-target of POST /ingest here, the path of callbackUrl for a callback. So a
  signature is valid for one endpoint only: a callback signed for one ingestion fails on another.
"""
import argparse
import hashlib
import hmac
import json
import logging
import os
import re
import signal
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_SKEW_SECONDS = 300
MAX_REQUEST_BYTES = 1024 * 1024
TEXT_TYPES = ("text/", "application/json", "application/xml", "application/x-ndjson", "application/csv")
PDF_PAGE = re.compile(rb"/Type\s*/Page(?![a-zA-Z])")

log = logging.getLogger("ingestion-service")


class Settings:
    secret = b""
    async_threshold = 1024 * 1024
    max_download = 512 * 1024 * 1024
    callback_delay = 0.0


def sign(secret, timestamp, method, path, raw_body):
    signed = f"{timestamp}\n{method.upper()}\n{path}\n".encode() + raw_body
    return "sha256=" + hmac.new(secret, signed, hashlib.sha256).hexdigest()


def signed_path(url):
    """The part of `url` a signature covers: its path plus query (the HTTP request-target)."""
    parts = urllib.parse.urlsplit(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def signed_headers(url, raw_body):
    ts = str(int(time.time()))
    sig = sign(Settings.secret, ts, "POST", signed_path(url), raw_body)
    return {"Content-Type": "application/json", "X-Quire-Timestamp": ts, "X-Quire-Signature": sig}


def verify(headers, method, path, raw_body):
    """None when the request is authentic, else the reason it is not."""
    ts = headers.get("X-Quire-Timestamp", "")
    sig = headers.get("X-Quire-Signature", "")
    if not ts.isdigit():
        return "missing or malformed X-Quire-Timestamp"
    if abs(time.time() - int(ts)) > MAX_SKEW_SECONDS:
        return "stale timestamp"
    if not hmac.compare_digest(sign(Settings.secret, ts, method, path, raw_body), sig.lower()):
        return "bad signature"
    return None


class PermanentError(Exception):
    """The request can never succeed (answered 4xx / reported as failed)."""


class TransientError(Exception):
    """Worth retrying later (answered 5xx)."""


def download(document):
    """Streams the document, checking its size and sha256 on the way. Returns (bytes, sha256)."""
    url = document["downloadUrl"]
    digest = hashlib.sha256()
    chunks = []
    total = 0
    try:
        with urllib.request.urlopen(url, timeout=60) as res:
            while True:
                chunk = res.read(64 * 1024)
                if not chunk:
                    break
                total += len(chunk)
                if total > Settings.max_download:
                    raise PermanentError(f"document larger than {Settings.max_download} bytes")
                digest.update(chunk)
                chunks.append(chunk)
    except urllib.error.HTTPError as err:
        if err.code in (403, 404, 410):
            raise PermanentError(f"download refused with HTTP {err.code}") from err
        raise TransientError(f"download failed with HTTP {err.code}") from err
    except (urllib.error.URLError, TimeoutError, ConnectionError) as err:
        raise TransientError(f"download failed: {err}") from err
    data = b"".join(chunks)
    if total != document.get("size"):
        raise PermanentError(f"size mismatch: expected {document.get('size')}, got {total}")
    sha = digest.hexdigest()
    if sha != document.get("sha256"):
        raise PermanentError(f"sha256 mismatch: expected {document.get('sha256')}, got {sha}")
    return data, sha


def analyze(document, data, sha):
    """Something real about the bytes: size and hash for any file, counts for text, pages for PDFs."""
    mime = document.get("mimeType") or "application/octet-stream"
    result = {"bytes": len(data), "sha256": sha, "sha256Verified": True, "mimeType": mime, "kind": "binary"}
    if data.startswith(b"%PDF-") or mime == "application/pdf":
        result["kind"] = "pdf"
        result["pages"] = len(PDF_PAGE.findall(data))
    elif mime.startswith(TEXT_TYPES) or b"\x00" not in data[:8192]:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        if text is not None:
            result["kind"] = "text"
            result["chars"] = len(text)
            result["lines"] = len(text.splitlines())
            result["words"] = len(text.split())
    return result


def ingest(payload):
    data, sha = download(payload["document"])
    return analyze(payload["document"], data, sha)


def post_callback(url, body, attempts=5):
    raw = json.dumps(body).encode()
    for attempt in range(1, attempts + 1):
        req = urllib.request.Request(url, data=raw, method="POST", headers=signed_headers(url, raw))
        try:
            with urllib.request.urlopen(req, timeout=30) as res:
                log.info("callback %s -> %s", body["ingestionId"], res.status)
                return
        except urllib.error.HTTPError as err:
            log.warning("callback %s -> HTTP %s", body["ingestionId"], err.code)
            if err.code < 500:
                return  # refused for good (already final, replayed, bad signature...): retrying cannot help
        except (urllib.error.URLError, TimeoutError, ConnectionError) as err:
            log.warning("callback %s failed: %s", body["ingestionId"], err)
        time.sleep(min(2 ** attempt, 30))  # a fresh timestamp and signature on the next try


def run_async(payload):
    if Settings.callback_delay > 0:
        time.sleep(Settings.callback_delay)
    ingestion_id = payload["ingestionId"]
    try:
        body = {"ingestionId": ingestion_id, "status": "succeeded", "result": ingest(payload)}
    except (PermanentError, TransientError) as err:
        body = {"ingestionId": ingestion_id, "status": "failed", "error": str(err)}
    except Exception as err:  # noqa: BLE001 - the callback must always be sent
        log.exception("ingestion %s crashed", ingestion_id)
        body = {"ingestionId": ingestion_id, "status": "failed", "error": f"internal error: {err.__class__.__name__}"}
    post_callback(payload["callbackUrl"], body)


# Idempotency-Key -> finished synchronous answer, so a retried request is not processed twice.
_done = {}
_done_lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    server_version = "quire-ingestion/1.0"
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        log.info("%s %s", self.address_string(), fmt % args)

    def reply(self, status, body):
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_GET(self):
        if self.path == "/health":
            return self.reply(200, {"status": "ok"})
        return self.reply(404, {"error": "not found"})

    def do_POST(self):
        if self.path.split("?")[0] != "/ingest":
            return self.reply(404, {"error": "not found"})
        length = int(self.headers.get("Content-Length") or 0)
        if length <= 0 or length > MAX_REQUEST_BYTES:
            return self.reply(413 if length > 0 else 400, {"error": "body missing or too large"})
        raw = self.rfile.read(length)
        # Signed for the request-target as Quire sent it (the path and query of its INGESTION_URL).
        problem = verify(self.headers, "POST", self.path, raw)
        if problem is not None:
            return self.reply(401, {"error": problem})
        try:
            payload = json.loads(raw)
            doc = payload["document"]
            for key in ("ingestionId", "callbackUrl"):
                if not isinstance(payload[key], str):
                    raise ValueError(key)
            for key in ("downloadUrl", "sha256"):
                if not isinstance(doc[key], str):
                    raise ValueError(key)
            if not isinstance(doc["size"], int):
                raise ValueError("size")
        except (ValueError, KeyError, TypeError) as err:
            return self.reply(400, {"error": f"invalid payload: {err}"})
        key = self.headers.get("Idempotency-Key") or payload["ingestionId"]
        with _done_lock:
            if key in _done:
                return self.reply(*_done[key])
        options = payload.get("options") or {}
        if options.get("async") is True or doc["size"] > Settings.async_threshold:
            threading.Thread(target=run_async, args=(payload,), daemon=True).start()
            return self.reply(202, {"status": "accepted"})
        try:
            answer = (200, {"status": "succeeded", "result": ingest(payload)})
        except PermanentError as err:
            answer = (422, {"status": "failed", "error": str(err)})
        except TransientError as err:
            return self.reply(503, {"error": str(err)})
        with _done_lock:
            _done[key] = answer
        return self.reply(*answer)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Quire reference ingestion backend")
    parser.add_argument("--host", default=os.environ.get("HOST", "0.0.0.0"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8081")))
    parser.add_argument("--secret", default=os.environ.get("INGESTION_SECRET"))
    parser.add_argument("--async-threshold", type=int, default=int(os.environ.get("ASYNC_THRESHOLD", str(1024 * 1024))),
                        help="documents larger than this many bytes are answered 202 and finished by a callback")
    parser.add_argument("--callback-delay", type=float, default=float(os.environ.get("CALLBACK_DELAY", "0")),
                        help="seconds to wait before working on an async ingestion (demos)")
    parser.add_argument("--log-level", default=os.environ.get("LOG_LEVEL", "INFO"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    if not args.secret or len(args.secret) < 16:
        parser.error("a secret of at least 16 characters is required (--secret or INGESTION_SECRET)")
    Settings.secret = args.secret.encode()
    Settings.async_threshold = args.async_threshold
    Settings.callback_delay = args.callback_delay
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    # The bound port (useful with --port 0); tests wait for this line.
    print(f"listening on {server.server_address[0]}:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
