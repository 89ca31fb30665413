#!/usr/bin/env python3
"""Reference ingestion backend for Quire (Python 3 standard library only), and a real index.

Implements the contract in Quire's docs/ingestion-backend.md:
  POST /ingest   signed JSON {ingestionId, operation, pipeline, options, callbackUrl, document: {...}}
                 upsert: download, extract text, chunk, swap the document's chunks in one transaction
                 delete: remove every chunk of the document
                 -> 200 {"status": "succeeded", "result": {...}}    (small files, deletes)
                 -> 202 {"status": "accepted"} + a signed callback   (large files, or options.async)
  GET  /index/documents/:id            -> {id, version, chunks, pipelineVersion, indexedAt} | 404
  GET  /index/documents/:id/chunks     -> {id, version, chunks: [{chunk, version, text}]} | 404
  GET  /index/search?q=...&limit=10    -> [{documentId, version, chunk, snippet, score}], best first
  GET  /health                          -> 200 {"status": "ok", ...}
  GET|POST /_control (signed)           -> injected failures and delays, the operations received
Signing: see contract.py. Modules: contract (wire), operations (upsert/delete), extract (text),
index_store (SQLite).
"""
import argparse
import json
import logging
import os
import re
import signal
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import operations
from contract import Settings, verify
from index_store import Index

MAX_REQUEST_BYTES = 1024 * 1024
HERE = os.path.dirname(os.path.abspath(__file__))

log = logging.getLogger("ingestion-service")


class Handler(BaseHTTPRequestHandler):
    server_version = "quire-ingestion/2.0"
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        log.info("%s %s", self.address_string(), fmt % args)

    def reply(self, status, body, headers=None):
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(raw)

    def read_signed(self):
        """The raw body of an authentic request, or None once an error was answered."""
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_REQUEST_BYTES or (length == 0 and self.command == "POST"):
            self.reply(413 if length > 0 else 400, {"error": "body missing or too large"})
            return None
        raw = self.rfile.read(length) if length else b""
        # Signed for the request-target as Quire sent it (the path and query of its INGESTION_URL).
        problem = verify(self.headers, self.command, self.path, raw)
        if problem is not None:
            self.reply(401, {"error": problem})
            return None
        return raw

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/health":
            return self.reply(200, {"status": "ok", "search": operations.index.search_mode, "documents": operations.index.count()})
        if url.path == "/_control":
            if self.read_signed() is not None:
                self.reply(200, operations.control.state())
            return None
        if url.path.startswith("/index/"):
            if Settings.index_token and self.headers.get("Authorization", "") != f"Bearer {Settings.index_token}":
                return self.reply(401, {"error": "the index API needs Authorization: Bearer <--index-token>"})
            return self.index_api(url)
        return self.reply(404, {"error": "not found"})

    def index_api(self, url):
        parts = url.path.split("/")  # ['', 'index', 'documents', id, ('chunks')]
        if len(parts) in (4, 5) and parts[2] == "documents" and parts[3] and (len(parts) == 4 or parts[4] == "chunks"):
            doc_id = urllib.parse.unquote(parts[3])
            held = operations.index.document(doc_id)
            if held is None:
                return self.reply(404, {"error": f"document {doc_id} is not in the index"})
            if len(parts) == 4:
                return self.reply(200, held)
            return self.reply(200, {"id": doc_id, "version": held["version"], "chunks": operations.index.chunks(doc_id)})
        if url.path == "/index/search":
            query = urllib.parse.parse_qs(url.query)
            q = (query.get("q") or [""])[0]
            limit = (query.get("limit") or ["10"])[0]
            if not q.strip() or len(q) > 1000:
                return self.reply(400, {"error": "q is required (1 to 1000 characters)"})
            if not limit.isdigit() or not 1 <= int(limit) <= 100:
                return self.reply(400, {"error": "limit must be an integer from 1 to 100"})
            hits = operations.index.search(q, int(limit))
            return self.reply(200, hits, {"X-Index-Search": operations.index.search_mode})
        return self.reply(404, {"error": "not found"})

    def do_POST(self):
        path = self.path.split("?")[0]
        if path not in ("/ingest", "/_control"):
            return self.reply(404, {"error": "not found"})
        raw = self.read_signed()
        if raw is None:
            return None
        if path == "/_control":
            try:
                operations.control.update(json.loads(raw))
            except ValueError as err:
                return self.reply(400, {"error": str(err)})
            return self.reply(200, operations.control.state(with_received=False))
        try:
            payload = operations.parse(raw)
        except (ValueError, KeyError, TypeError) as err:
            return self.reply(400, {"error": f"invalid payload: {err}"})
        key = self.headers.get("Idempotency-Key") or payload["ingestionId"]
        if len(key) > 255:
            return self.reply(400, {"error": "Idempotency-Key longer than 255 characters"})
        control = operations.control
        entry = operations.entry_of(payload, key)
        token = control.enter(entry)
        try:  # the request ends (leaves control.active) before its answer is written
            failure = control.take_failure()
            options = payload.get("options") if isinstance(payload.get("options"), dict) else {}
            upsert = payload["operation"] == "upsert"
            if failure is not None:
                control.record(**entry, outcome="injected-failure", status=failure)
                answer = (failure, {"error": "injected failure (--fail-first or POST /_control failNext)"})
            elif options.get("async") is True or (upsert and payload["document"]["size"] > Settings.async_threshold):
                answer = operations.start_async(payload, key, entry, token)
                token = None  # ended by the background job (or already by start_async)
            else:
                answer = operations.run_sync(payload, key, entry)
        finally:
            if token is not None:
                control.leave(token)
        return self.reply(*answer)


def env_int(name, default):
    return int(os.environ.get(name, str(default)))


def main(argv=None):
    parser = argparse.ArgumentParser(description="Quire reference ingestion backend")
    parser.add_argument("--host", default=os.environ.get("HOST", "0.0.0.0"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8081")))
    parser.add_argument("--secret", default=os.environ.get("INGESTION_SECRET"))
    parser.add_argument("--async-threshold", type=int, default=int(os.environ.get("ASYNC_THRESHOLD", str(1024 * 1024))),
                        help="documents larger than this many bytes are answered 202 and finished by a callback")
    parser.add_argument("--callback-delay", type=float, default=float(os.environ.get("CALLBACK_DELAY", "0")),
                        help="seconds to wait before working on an async ingestion (demos)")
    data_dir = os.environ.get("DATA_DIR") or os.path.join(HERE, "data")
    parser.add_argument("--index-path", default=os.environ.get("INDEX_PATH") or os.path.join(data_dir, "index.sqlite"),
                        help="the SQLite file of the index (':memory:' for a throw-away one); default $DATA_DIR/index.sqlite")
    parser.add_argument("--pipeline-version", default=os.environ.get("PIPELINE_VERSION", "reference-1"),
                        help="reported as result.pipelineVersion and stored with each indexed version")
    parser.add_argument("--chunk-size", type=int, default=env_int("CHUNK_SIZE", 1000), help="characters per chunk, at most")
    parser.add_argument("--no-fts", action="store_true", help="search with LIKE even when the sqlite3 build has FTS5")
    parser.add_argument("--index-token", default=os.environ.get("INDEX_TOKEN"),
                        help="when set, GET /index/* needs Authorization: Bearer <token>")
    parser.add_argument("--delay-ms", type=int, default=env_int("DELAY_MS", 0), help="wait this long before each operation (tests, demos)")
    parser.add_argument("--delete-delay-ms", type=int, default=None, help="the wait before a delete (default: --delay-ms)")
    parser.add_argument("--fail-first", type=int, default=env_int("FAIL_FIRST", 0),
                        help="answer the first N authentic POST /ingest requests with --fail-status, doing nothing")
    parser.add_argument("--fail-status", type=int, default=503)
    parser.add_argument("--log-level", default=os.environ.get("LOG_LEVEL", "INFO"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    if not args.secret or len(args.secret) < 16:
        parser.error("a secret of at least 16 characters is required (--secret or INGESTION_SECRET)")
    if args.chunk_size < 50:
        parser.error("--chunk-size must be at least 50")
    flags = {"failNext": "--fail-first", "failStatus": "--fail-status", "delayMs": "--delay-ms",
             "deleteDelayMs": "--delete-delay-ms", "pipelineVersion": "--pipeline-version"}
    try:
        operations.control.update({"failNext": args.fail_first, "failStatus": args.fail_status, "delayMs": args.delay_ms,
                                   "deleteDelayMs": args.delete_delay_ms, "pipelineVersion": args.pipeline_version})
    except ValueError as err:  # it names the JSON field: say the flag
        parser.error(re.sub(r"^\w+", lambda m: flags.get(m.group(), m.group()), str(err)))
    Settings.secret = args.secret.encode()
    Settings.async_threshold = args.async_threshold
    Settings.callback_delay = args.callback_delay
    Settings.chunk_size = args.chunk_size
    Settings.index_token = args.index_token
    operations.index = Index(args.index_path, use_fts=not args.no_fts)
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    log.info("index %s (search: %s)", args.index_path, operations.index.search_mode)
    # The bound port (useful with --port 0); tests wait for this line.
    print(f"listening on {server.server_address[0]}:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        operations.index.close()


if __name__ == "__main__":
    main()
