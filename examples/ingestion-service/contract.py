"""Quire's side of the wire: signatures (both directions), the download, the callback.

Signing (both directions):
  X-Quire-Timestamp: <unix seconds>
  X-Quire-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>\\n<METHOD>\\n<path>\\n<raw body>")>
  <path> is the path (plus "?query", if any) of the URL the request is sent to, as the sender was
  given it: the request-target of POST /ingest here, the path of callbackUrl for a callback. So a
  signature is valid for one endpoint only: a callback signed for one ingestion fails on another.
"""
import hashlib
import hmac
import json
import logging
import time
import urllib.error
import urllib.parse
import urllib.request

MAX_SKEW_SECONDS = 300

log = logging.getLogger("ingestion-service")


class Settings:
    secret = b""
    async_threshold = 1024 * 1024
    max_download = 512 * 1024 * 1024
    callback_delay = 0.0
    chunk_size = 1000
    index_token = None


class PermanentError(Exception):
    """The request can never succeed (answered 4xx / reported as failed)."""


class TransientError(Exception):
    """Worth retrying later (answered 5xx)."""


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
