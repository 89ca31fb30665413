"""The index: text chunks per document and version in SQLite (the stdlib sqlite3), searched with
FTS5 where the sqlite3 build has it, else with LIKE.

One connection, shared by the server's threads behind a lock: every statement is short (the slow
parts of an ingestion, download and extraction, happen outside it), and it works the same for a
file and for ":memory:". A file is opened in WAL mode, so other processes can read it meanwhile.
"""
import datetime
import json
import os
import re
import sqlite3
import threading
import time

SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
  id TEXT PRIMARY KEY,
  version INTEGER NOT NULL,
  chunks INTEGER NOT NULL,
  pipeline_version TEXT NOT NULL,
  sha256 TEXT,
  mime_type TEXT,
  kind TEXT,
  indexed_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS chunks (
  rowid INTEGER PRIMARY KEY,
  document_id TEXT NOT NULL,
  version INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  text TEXT NOT NULL,
  UNIQUE (document_id, seq)
);
CREATE TABLE IF NOT EXISTS answers (
  key TEXT PRIMARY KEY,
  status INTEGER NOT NULL,
  body TEXT NOT NULL,
  at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS answers_at ON answers (at);
"""

FTS_SCHEMA = """
CREATE VIRTUAL TABLE chunks_fts USING fts5(text, content='chunks', content_rowid='rowid', tokenize='unicode61 remove_diacritics 2');
CREATE TRIGGER chunks_ai AFTER INSERT ON chunks BEGIN
  INSERT INTO chunks_fts(rowid, text) VALUES (new.rowid, new.text);
END;
CREATE TRIGGER chunks_ad AFTER DELETE ON chunks BEGIN
  INSERT INTO chunks_fts(chunks_fts, rowid, text) VALUES ('delete', old.rowid, old.text);
END;
INSERT INTO chunks_fts(chunks_fts) VALUES ('rebuild');
"""

ANSWER_TTL_SECONDS = 24 * 3600
TERM = re.compile(r"\w+", re.UNICODE)


class InjectedFault(Exception):
    """A write made to fail half-way on purpose (the control endpoint's writeFaults)."""


def fts5_available():
    try:
        sqlite3.connect(":memory:").execute("CREATE VIRTUAL TABLE t USING fts5(x)")
        return True
    except sqlite3.OperationalError:
        return False


def _now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Index:
    def __init__(self, path, use_fts=True):
        if path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=10)
        self._db.execute("PRAGMA busy_timeout = 10000")
        # SQLite's lower() folds ASCII only; the LIKE search folds like Python does.
        self._db.create_function("py_lower", 1, lambda s: None if s is None else s.lower(), deterministic=True)
        if path != ":memory:":
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")
        self._db.executescript(SCHEMA)
        has_fts_table = self._db.execute("SELECT 1 FROM sqlite_master WHERE name = 'chunks_fts'").fetchone() is not None
        self.search_mode = "fts5" if use_fts and fts5_available() else "like"
        if self.search_mode == "fts5" and not has_fts_table:
            self._db.executescript(f"BEGIN; {FTS_SCHEMA} COMMIT;")

    def close(self):
        with self._lock:
            self._db.close()

    def document(self, doc_id):
        with self._lock:
            row = self._db.execute(
                "SELECT id, version, chunks, pipeline_version, indexed_at, sha256, mime_type, kind FROM documents WHERE id = ?",
                (doc_id,)).fetchone()
        if row is None:
            return None
        keys = ("id", "version", "chunks", "pipelineVersion", "indexedAt", "sha256", "mimeType", "kind")
        return dict(zip(keys, row))

    def chunks(self, doc_id):
        with self._lock:
            rows = self._db.execute("SELECT seq, version, text FROM chunks WHERE document_id = ? ORDER BY seq", (doc_id,)).fetchall()
        return [{"chunk": seq, "version": version, "text": text} for seq, version, text in rows]

    def count(self):
        with self._lock:
            return self._db.execute("SELECT count(*) FROM documents").fetchone()[0]

    def replace(self, doc_id, version, chunks, pipeline_version, meta, fault=False):
        """Swaps the document's chunks for these in one transaction. Returns None (and changes
        nothing) when the index already holds a newer version."""
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                held = db.execute("SELECT version FROM documents WHERE id = ?", (doc_id,)).fetchone()
                if held is not None and held[0] > version:
                    db.execute("ROLLBACK")
                    return None
                db.execute("DELETE FROM chunks WHERE document_id = ?", (doc_id,))
                db.executemany("INSERT INTO chunks (document_id, version, seq, text) VALUES (?, ?, ?, ?)",
                               [(doc_id, version, seq, text) for seq, text in enumerate(chunks)])
                if fault:
                    raise InjectedFault("injected write fault (after the old chunks were deleted)")
                db.execute(
                    "INSERT INTO documents (id, version, chunks, pipeline_version, sha256, mime_type, kind, indexed_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET version = excluded.version,"
                    " chunks = excluded.chunks, pipeline_version = excluded.pipeline_version, sha256 = excluded.sha256,"
                    " mime_type = excluded.mime_type, kind = excluded.kind, indexed_at = excluded.indexed_at",
                    (doc_id, version, len(chunks), pipeline_version, meta.get("sha256"), meta.get("mimeType"), meta.get("kind"), _now()))
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        return len(chunks)

    def delete(self, doc_id):
        """Removes every chunk of the document; the number removed (0 when it was not held)."""
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                removed = db.execute("DELETE FROM chunks WHERE document_id = ?", (doc_id,)).rowcount
                db.execute("DELETE FROM documents WHERE id = ?", (doc_id,))
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        return removed

    def search(self, query, limit):
        """Ranked hits for the words of `query` (all must occur in a chunk): best first."""
        terms = [t.lower() for t in TERM.findall(query)][:16]
        if not terms:
            return []
        if self.search_mode == "fts5":
            match = " ".join('"%s"' % t.replace('"', '""') for t in terms)
            with self._lock:
                rows = self._db.execute(
                    "SELECT c.document_id, c.version, c.seq, snippet(chunks_fts, 0, '[', ']', '…', 12), bm25(chunks_fts)"
                    " FROM chunks_fts JOIN chunks c ON c.rowid = chunks_fts.rowid"
                    " WHERE chunks_fts MATCH ? ORDER BY bm25(chunks_fts), c.document_id, c.seq LIMIT ?",
                    (match, limit)).fetchall()
            return [{"documentId": d, "version": v, "chunk": s, "snippet": snip, "score": float(f"{-score:.6g}")}
                    for d, v, s, snip, score in rows]
        like = " AND ".join("py_lower(text) LIKE ? ESCAPE '\\'" for _ in terms)
        params = ["%" + t.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%" for t in terms]
        with self._lock:
            rows = self._db.execute(f"SELECT document_id, version, seq, text FROM chunks WHERE {like}", params).fetchall()
        hits = []
        for d, v, s, text in rows:
            lower = text.lower()
            score = sum(lower.count(t) for t in terms) / (1 + len(text) / 1000)
            hits.append({"documentId": d, "version": v, "chunk": s, "snippet": _snippet(text, lower.find(terms[0])), "score": float(f"{score:.6g}")})
        hits.sort(key=lambda h: (-h["score"], h["documentId"], h["chunk"]))
        return hits[:limit]

    # Idempotency: the final answers to Idempotency-Keys, so a redelivery is not processed twice.
    def answer(self, key):
        with self._lock:
            row = self._db.execute("SELECT status, body FROM answers WHERE key = ? AND at > ?",
                                   (key, time.time() - ANSWER_TTL_SECONDS)).fetchone()
        return None if row is None else (row[0], json.loads(row[1]))

    def remember(self, key, status, body):
        with self._lock:
            self._db.execute("DELETE FROM answers WHERE at < ?", (time.time() - ANSWER_TTL_SECONDS,))
            self._db.execute("INSERT OR REPLACE INTO answers (key, status, body, at) VALUES (?, ?, ?, ?)",
                             (key, status, json.dumps(body), time.time()))


def _snippet(text, at, width=60):
    start = max(0, at - width)
    end = min(len(text), at + width * 2)
    return ("…" if start > 0 else "") + text[start:end] + ("…" if end < len(text) else "")
