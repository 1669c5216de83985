"""The streaming JSON reader under osdbData.read_osdb_file: an OSDB file's events (a JSON array, or one
event object) one decoded value at a time from a buffered text read, so a large file never sits in memory
whole; every problem is an OsdbFileError naming the file."""
import json
import re

_CHUNK_CHARS = 1 << 20
_WHITESPACE = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


class OsdbFileError(ValueError):
    """An OSDB file that cannot be used at all (missing, unreadable, empty, invalid JSON, wrong type)."""


class EventStream:
    """Yields the events of a JSON array (or one object) from a text file, one decoded value at a time."""

    def __init__(self, f, path):
        self.f, self.path = f, path
        self.buf, self.pos, self.consumed, self.eof = "", 0, 0, False

    def error(self, problem):
        return OsdbFileError(f"{self.path}: {problem}")

    def _fill(self, min_chars):
        """Drop the consumed text, then read until min_chars are buffered or the file ends."""
        self.consumed += self.pos
        self.buf, self.pos = self.buf[self.pos:], 0
        while not self.eof and len(self.buf) < min_chars:
            try:
                chunk = self.f.read(max(_CHUNK_CHARS, min_chars - len(self.buf)))
            except (OSError, UnicodeDecodeError) as exc:
                raise self.error(f"unreadable ({exc})") from None
            self.eof = not chunk
            self.buf += chunk

    def _next_char(self):
        """Skip whitespace; the next character, or '' at the end of the file."""
        while True:
            self.pos = _WHITESPACE.match(self.buf, self.pos).end()
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if self.eof:
                return ""
            self._fill(_CHUNK_CHARS)

    def _decode(self):
        """Decode one value, reading more (doubling) while it may only be cut off by the buffer end."""
        while True:
            try:
                value, end = _DECODER.raw_decode(self.buf, self.pos)
                if end < len(self.buf) or self.eof:
                    self.pos = end
                    return value
            except json.JSONDecodeError as exc:
                cut_off = exc.pos >= len(self.buf) - 16 or exc.msg.startswith("Unterminated string")
                if self.eof or not cut_off:
                    raise self.error(f"invalid JSON at char {self.consumed + exc.pos}: {exc.msg}") from None
            self._fill(2 * max(len(self.buf) - self.pos, _CHUNK_CHARS))

    def _expect_end(self):
        if self._next_char():
            raise self.error(f"invalid JSON at char {self.consumed + self.pos}: extra data after the value")

    def _single_event(self, obj):
        """The one event of a file holding an object; OsdbFileError when the object is no event."""
        if "datapoints" in obj:
            return obj
        lists = {k: len(v) for k, v in obj.items() if isinstance(v, list) and v and isinstance(v[0], dict)}
        if lists:
            key, n = max(lists.items(), key=lambda kv: kv[1])
            raise self.error(f"a JSON object holding {n} records under {key!r}, not an OSDB event list "
                             "(a JSON array of events)")
        raise self.error("a JSON object without datapoints, not an OSDB event or a JSON array of events")

    def values(self):
        first = self._next_char()
        if first == "{":
            yield self._single_event(self._decode())
        elif first == "[":
            self.pos += 1
            if self._next_char() == "]":
                raise self.error("an empty JSON array: no events")
            while True:
                self._next_char()
                yield self._decode()
                sep = self._next_char()
                self.pos += 1
                if sep == "]":
                    break
                if sep != ",":
                    raise self.error(f"invalid JSON at char {self.consumed + self.pos - 1}: "
                                     "expected ',' or ']' between events")
        elif first == "":
            raise self.error("empty file")
        else:
            raise self.error("top level is not a JSON array or object of events")
        self._expect_end()
