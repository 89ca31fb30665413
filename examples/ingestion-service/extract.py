"""Text from a document's bytes, and the chunks the index stores (standard library only).

UTF-8 text is taken as it is. PDFs are read cheaply: the text-showing operators (Tj, TJ, ', ")
of content streams that are uncompressed or FlateDecode (zlib). That covers PDFs written by
ordinary tools with simple fonts; text drawn with composite fonts (glyph ids without a readable
encoding), scanned pages and other filters yield nothing. A real pipeline replaces this module.
"""
import logging
import re
import zlib

TEXT_TYPES = ("text/", "application/json", "application/xml", "application/x-ndjson", "application/csv")
PDF_PAGE = re.compile(rb"/Type\s*/Page(?![a-zA-Z])")
STREAM = re.compile(rb"(?<!end)stream(?:\r\n|\n|\r)")
MAX_STREAM_BYTES = 16 * 1024 * 1024  # decompressed, per stream: a zip bomb stops here
MAX_PDF_TEXT = 8 * 1024 * 1024
MAX_PDF_SCAN = 64 * 1024 * 1024  # decoded content-stream bytes read per PDF
WHITESPACE = b" \t\r\n\f\x00"
DELIMITERS = WHITESPACE + b"()<>[]{}/%"
SPACES = re.compile(rb"[ \t\r\n\f\x00]+")
log = logging.getLogger("ingestion-service")
ESCAPES = {ord("n"): b"\n", ord("r"): b"\r", ord("t"): b"\t", ord("b"): b"\b", ord("f"): b"\f"}


def analyze(document, data, sha):
    """(result, text): what the bytes are (size, hash, counts, pages) and their text ('' if none)."""
    mime = document.get("mimeType") or "application/octet-stream"
    result = {"bytes": len(data), "sha256": sha, "sha256Verified": True, "mimeType": mime, "kind": "binary"}
    text = ""
    if data.startswith(b"%PDF-") or mime == "application/pdf":
        result["kind"] = "pdf"
        result["pages"] = pdf_pages(data)
        try:
            text = pdf_text(data)
        except Exception:  # noqa: BLE001 - a PDF we cannot read is held without text, not retried forever
            log.warning("text extraction failed for document %s", document.get("id"), exc_info=True)
            text = ""
        result["textChars"] = len(text)
    elif mime.startswith(TEXT_TYPES) or b"\x00" not in data[:8192]:
        try:
            decoded = data.decode("utf-8")
        except UnicodeDecodeError:
            decoded = None
        if decoded is not None:
            text = decoded.lstrip("\ufeff")
            result["kind"] = "text"
            result["chars"] = len(decoded)
            result["lines"] = len(decoded.splitlines())
            result["words"] = len(decoded.split())
    return result, text


def chunk_text(text, size=1000):
    """Whitespace-normalised pieces of at most `size` characters, cut between words where possible."""
    words = text.split()
    chunks, current, length = [], [], 0
    for word in words:
        while len(word) > size:  # a "word" longer than a chunk (a URL, base64...) is cut hard
            if current:
                chunks.append(" ".join(current))
                current, length = [], 0
            chunks.append(word[:size])
            word = word[size:]
        if not word:
            continue
        if current and length + 1 + len(word) > size:
            chunks.append(" ".join(current))
            current, length = [], 0
        length += len(word) + (1 if current else 0)
        current.append(word)
    if current:
        chunks.append(" ".join(current))
    return chunks


def pdf_pages(data):
    """A count of /Type /Page objects: in the file, and in its compressed object streams (PDF 1.5+)."""
    pages = len(PDF_PAGE.findall(data))
    for m in STREAM.finditer(data):
        head = data[data.rfind(b"obj", 0, m.start()):m.start()]
        if re.search(rb"/Type\s*/ObjStm", head) and re.findall(rb"/(\w+Decode)\b", head) == [b"FlateDecode"]:
            end = data.find(b"endstream", m.end())
            try:
                pages += len(PDF_PAGE.findall(zlib.decompressobj().decompress(data[m.end():end], MAX_STREAM_BYTES)))
            except zlib.error:
                pass
    return pages


def pdf_text(data):
    """The text of a PDF's content streams, one line per text object; '' when there is none."""
    parts, total, scanned = [], 0, 0
    for m in STREAM.finditer(data):
        head = data[data.rfind(b"obj", 0, m.start()):m.start()]
        end = data.find(b"endstream", m.end())
        if end < 0:
            break
        body = _stream_bytes(head, data[m.end():end])
        if body is None or b"BT" not in body:
            continue
        scanned += len(body)
        if scanned > MAX_PDF_SCAN:
            break
        text = content_text(body)
        if text:
            parts.append(text)
            total += len(text)
            if total > MAX_PDF_TEXT:
                break
    return "\n".join(parts)[:MAX_PDF_TEXT]


def _stream_bytes(head, raw):
    """A stream's decoded bytes, or None when it is not a content stream we can read."""
    if re.search(rb"/Subtype\s*/Image|/Length1|/Type\s*/(?:XRef|ObjStm|EmbeddedFile)|/DecodeParms", head):
        return None
    filters = re.findall(rb"/(\w+Decode)\b", head)
    if not filters:
        return raw[:MAX_STREAM_BYTES]
    if filters != [b"FlateDecode"]:
        return None
    try:
        return zlib.decompressobj().decompress(raw, MAX_STREAM_BYTES)
    except zlib.error:
        return None


def _literal(data, i):
    """The PDF literal string starting at data[i] == '(' -> (bytes, index after it)."""
    out, depth, i, n = bytearray(), 1, i + 1, len(data)
    while i < n:
        c = data[i]
        if c == 0x5C and i + 1 < n:  # backslash
            nxt = data[i + 1]
            if nxt in ESCAPES:
                out += ESCAPES[nxt]
                i += 2
            elif 0x30 <= nxt <= 0x37:
                j = i + 1
                while j < min(i + 4, n) and 0x30 <= data[j] <= 0x37:
                    j += 1
                out.append(int(data[i + 1:j], 8) & 0xFF)
                i = j
            elif nxt in b"\r\n":  # a line continuation
                i += 3 if data[i + 1:i + 3] == b"\r\n" else 2
            else:
                out.append(nxt)
                i += 2
            continue
        if c == 0x28:
            depth += 1
        elif c == 0x29:
            depth -= 1
            if depth == 0:
                return bytes(out), i + 1
        out.append(c)
        i += 1
    return bytes(out), n


def _decode(raw):
    if raw.startswith(b"\xfe\xff"):
        return raw[2:].decode("utf-16-be", "ignore")
    text = raw.decode("latin-1")
    return "".join(ch for ch in text if ch.isprintable() or ch in "\t\n")


def _hex(raw):
    digits = re.sub(rb"[^0-9A-Fa-f]", b"", raw)
    if len(digits) % 2:
        digits += b"0"
    decoded = bytes.fromhex(digits.decode())
    if not decoded.startswith(b"\xfe\xff") and any(b < 0x20 and b not in (9, 10, 13) for b in decoded):
        return b""  # glyph ids of a composite font: not text we can read
    return decoded


def content_text(data):
    """The text shown by one content stream's operators."""
    out, operands, i, n = [], [], 0, len(data)
    while i < n:
        c = data[i]
        if c in WHITESPACE:
            i = SPACES.match(data, i).end()
        elif c == 0x25:  # comment
            while i < n and data[i] not in b"\r\n":
                i += 1
        elif c == 0x28:
            s, i = _literal(data, i)
            operands.append(s)
        elif c == 0x3C and data[i + 1:i + 2] != b"<":
            end = data.find(b">", i)
            end = n if end < 0 else end
            operands.append(_hex(data[i + 1:end]))
            i = end + 1
        elif c in b"<>{}":
            i += 1
        elif c == 0x5B:
            operands.append("[")
            i += 1
        elif c == 0x5D:
            start = len(operands) - 1 - operands[::-1].index("[") if "[" in operands else len(operands)
            items = operands[start + 1:]
            del operands[start:]
            operands.append(items)
            i += 1
        else:
            j = i + 1
            while j < n and data[j] not in DELIMITERS:
                j += 1
            token = data[i:j]
            i = j
            if c == 0x2F:  # a name
                continue
            try:
                operands.append(float(token))
                continue
            except ValueError:
                pass
            i = _operator(token, operands, out, data, i)
            operands = []
    return re.sub(r"[ \t]*\n[ \t]*", "\n", "".join(out)).strip()


def _operator(op, operands, out, data, i):
    """Applies one operator to `out`; returns where scanning goes on (past inline image data)."""
    strings = [o for o in operands if isinstance(o, bytes)]
    if op in (b"Tj", b"'", b'"'):
        if op != b"Tj":
            out.append("\n")
        if strings:
            out.append(_decode(strings[-1]))
    elif op == b"TJ":
        for item in (operands[-1] if operands and isinstance(operands[-1], list) else []):
            if isinstance(item, bytes):
                out.append(_decode(item))
            elif isinstance(item, float) and item < -200:
                out.append(" ")
    elif op in (b"Td", b"TD"):
        nums = [o for o in operands if isinstance(o, float)]
        out.append("\n" if len(nums) >= 2 and nums[-1] != 0 else " ")
    elif op in (b"T*", b"ET"):
        out.append("\n")
    elif op == b"Tm":
        out.append(" ")
    elif op == b"ID":  # inline image data up to EI
        end = data.find(b"EI", i)
        return len(data) if end < 0 else end + 2
    return i
