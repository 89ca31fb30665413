"""Unit tests of the extraction, chunking and index modules: python3 -m unittest (from this folder).

The service as a whole is tested from Quire's suite (test/ingestion/python*.test.ts), which also
runs these.
"""
import threading
import unittest
import zlib

from extract import analyze, chunk_text, content_text, pdf_pages, pdf_text
from index_store import Index, InjectedFault


def pdf_with(*streams):
    body = b"%PDF-1.4\n1 0 obj << /Type /Page >> endobj\n"
    for n, (head, data) in enumerate(streams, start=2):
        body += b"%d 0 obj << %s /Length %d >>\nstream\n%s\nendstream\nendobj\n" % (n, head, len(data), data)
    return body + b"%%EOF\n"


class ExtractTest(unittest.TestCase):
    def test_text_operators(self):
        self.assertEqual(content_text(b"BT (Hello) Tj 0 -12 Td [(Wor) -10 (ld) -500 (again)] TJ T* (next) ' ET"),
                         "Hello\nWorld again\n\nnext")

    def test_literal_escapes_and_hex(self):
        self.assertEqual(content_text(rb"BT (a \(b\) c\\d \101\102 e\
f) Tj <48 69> Tj ET"), "a (b) c\\d AB efHi")
        self.assertEqual(content_text(b"BT <FEFF00E900E8> Tj ET"), "\u00e9\u00e8", "UTF-16 with a byte order mark")
        self.assertEqual(content_text(b"BT <0012003400> Tj ET"), "", "glyph ids are not text")

    def test_flate_and_plain_streams(self):
        flate = zlib.compress(b"BT (compressed words) Tj ET")
        data = pdf_with((b"/Filter /FlateDecode", flate), (b"", b"BT (plain words) Tj ET"),
                        (b"/Filter /DCTDecode", b"BT (not read) Tj ET"), (b"/Subtype /Image", b"BT (image) Tj ET"))
        self.assertEqual(pdf_text(data), "compressed words\nplain words")

    def test_pages_in_object_streams(self):
        objects = zlib.compress(b"<< /Type /Pages /Count 2 >> << /Type /Page >> << /Type /Page >>")
        self.assertEqual(pdf_pages(pdf_with((b"/Type /ObjStm /N 3 /First 0 /Filter /FlateDecode", objects))), 3)

    def test_broken_pdfs_give_no_text_and_no_error(self):
        for data in (b"%PDF-1.4\nstream\n", pdf_with((b"/Filter /FlateDecode", b"not zlib BT")),
                     pdf_with((b"", b"BT (unterminated Tj")), pdf_with((b"", b"BT [ ( ] TJ <zz> Tj 1.2.3 ET ID \x00\x01 EI")),
                     b"%PDF-" + bytes(range(256)) * 4):
            result, text = analyze({"mimeType": "application/pdf"}, data, "sha")
            self.assertEqual(result["kind"], "pdf")
            self.assertIsInstance(text, str)

    def test_zip_bomb_is_cut(self):
        bomb = zlib.compress(b"BT (x) Tj ET " + b" " * (20 * 1024 * 1024))
        self.assertEqual(pdf_text(pdf_with((b"/Filter /FlateDecode", bomb))), "x")

    def test_text_kinds(self):
        self.assertEqual(analyze({"mimeType": "text/plain"}, "\ufeffcafé au lait".encode(), "s")[1], "café au lait")
        result, text = analyze({"mimeType": "application/octet-stream"}, b"\x00\xff\xfe", "s")
        self.assertEqual((result["kind"], text), ("binary", ""))
        result, text = analyze({"mimeType": "text/plain"}, b"\xff\xfe latin-1 \xe9", "s")
        self.assertEqual((result["kind"], text), ("binary", ""), "not UTF-8: no text")

    def test_chunks(self):
        self.assertEqual(chunk_text("  a  b\n\nc  ", 50), ["a b c"])
        self.assertEqual(chunk_text("", 50), [])
        words = " ".join(["word"] * 30)
        chunks = chunk_text(words, 50)
        self.assertTrue(all(len(c) <= 50 for c in chunks))
        self.assertEqual(" ".join(chunks), words)
        self.assertEqual(chunk_text("x" * 120 + " tail", 50), ["x" * 50, "x" * 50, "x" * 20 + " tail"])


class IndexTest(unittest.TestCase):
    def setUp(self):
        self.index = Index(":memory:")

    def test_replace_is_one_transaction(self):
        self.index.replace("d", 1, ["one", "two"], "p", {})
        with self.assertRaises(InjectedFault):
            self.index.replace("d", 2, ["three"], "p", {}, fault=True)
        self.assertEqual([c["text"] for c in self.index.chunks("d")], ["one", "two"])
        self.assertEqual(self.index.document("d")["version"], 1)

    def test_never_backwards(self):
        self.index.replace("d", 3, ["three"], "p", {})
        self.assertIsNone(self.index.replace("d", 2, ["two"], "p", {}))
        self.assertEqual(self.index.document("d")["version"], 3)

    def test_threads_share_the_index(self):
        def work(n):
            for v in range(1, 6):
                self.index.replace(f"d{n}", v, [f"word{n} v{v}"] * 3, "p", {})
        threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        self.assertEqual(self.index.count(), 8)
        self.assertEqual({h["version"] for h in self.index.search("v5", 100)}, {5})
        self.assertEqual(len(self.index.search("v5", 100)), 24)

    def test_like_fallback_matches_fts(self):
        like = Index(":memory:", use_fts=False)
        for index in (self.index, like):
            index.replace("a", 1, ["Straße und Fluss", "nothing"], "p", {})
            index.replace("b", 1, ["straße straße STRASSE"], "p", {})
        self.assertEqual(like.search_mode, "like")
        self.assertEqual({h["documentId"] for h in like.search("STRAßE", 10)}, {"a", "b"})
        self.assertEqual({h["documentId"] for h in self.index.search("straße", 10)}, {"a", "b"})
        self.assertEqual(like.search("", 10), [])
        self.assertEqual(like.search("100%", 10), [])


if __name__ == "__main__":
    unittest.main()
