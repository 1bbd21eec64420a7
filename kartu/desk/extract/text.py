"""Input clean-up: HTML leftovers, control characters, quoted replies, caps."""

from __future__ import annotations

import html
import re
import unicodedata

# Raw input is cut here before any processing (defence against huge input).
RAW_CAP = 100_000
# What is left after removing quoted replies is cut here.
SCAN_CAP = 20_000

_RE_CONTROL = re.compile(
    r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200f\u2028\u2029\u2060\ufeff\ufffd]"
)
_RE_SURROGATE = re.compile(r"[\ud800-\udfff]")
_RE_TAGLIKE = re.compile(r"</?[A-Za-z!][^<>]{0,500}>")
_RE_BLOCK_TAG = re.compile(
    r"<\s*/?\s*(?:br|p|div|li|ul|ol|tr|td|th|table|h[1-6]|blockquote|section|article|hr|pre)\b[^<>]{0,500}>",
    re.I,
)
_RE_COMMENT = re.compile(r"<!--.{0,5000}?-->", re.S)
_RE_QUOTED_LINE = re.compile(r"^[ \t]*>.*$", re.M)
_RE_REPLY_HEADER = re.compile(
    r"^[ \t]*(?:"
    r"On\b[^\n]{0,300}?(?:\n[^\n]{0,300}?)?\bwrote:"
    r"|Pada\b[^\n]{0,300}?(?:\n[^\n]{0,300}?)?\bmenulis:"
    r"|-{2,}\s*(?:Original Message|Pesan Asli|Pesan asli|Reply message)\s*-{2,}"
    r"|_{10,}[ \t]*$"
    r"|(?:From|Dari)[ \t]*:[^\n]*\n[ \t]*(?:Sent|Date|Dikirim|Tanggal|To|Kepada)[ \t]*:"
    r")",
    re.M | re.I,
)
_RE_FORWARD_HEADER = re.compile(
    r"(?:-{2,}[ \t]*(?:Forwarded message|Pesan yang diteruskan|Pesan terusan)[ \t]*-*"
    r"|Begin forwarded message:)[^\n]*\n"
    r"(?:[ \t]*(?:From|Date|Sent|To|Cc|Subject|Dari|Tanggal|Dikirim|Kepada|Subjek)"
    r"[ \t]*:[^\n]*\n)*",
    re.I,
)
_RE_HEADER_LINES = re.compile(
    r"^[ \t]*(?:From|Date|Sent|To|Cc|Subject|Dari|Tanggal|Dikirim|Kepada|Subjek)[ \t]*:[^\n]*\n",
    re.M | re.I,
)
_RE_SUBJECT_PREFIX = re.compile(
    r"^\s*(?:(?:re|fw|fwd|aw|tr|balas|bls)\s*(?:\[\d+\])?\s*:\s*)+", re.I
)
_RE_MARKDOWN = re.compile(r"[*~]+")
_RE_HSPACE = re.compile(r"[^\S\n]+")
_RE_MANY_NL = re.compile(r"\n{3,}")


def _drop_blocks(text: str, tag: str) -> str:
    """Remove <tag ...>...</tag> blocks in linear time (unclosed: to the end)."""
    low = text.lower()
    if "<" + tag not in low:
        return text
    out: list[str] = []
    pos = 0
    open_tok, close_tok = "<" + tag, "</" + tag
    while True:
        i = low.find(open_tok, pos)
        if i < 0:
            out.append(text[pos:])
            break
        out.append(text[pos:i])
        j = low.find(close_tok, i)
        if j < 0:
            break
        k = low.find(">", j)
        pos = len(text) if k < 0 else k + 1
    return " ".join(out)


def strip_html(text: str) -> str:
    if "&" in text:
        text = html.unescape(text)
    if "<" not in text:
        return text
    for tag in ("script", "style", "head"):
        text = _drop_blocks(text, tag)
    text = _RE_COMMENT.sub(" ", text)
    text = _RE_BLOCK_TAG.sub("\n", text)
    text = _RE_TAGLIKE.sub("", text)
    if "&" in text:
        text = html.unescape(text)
    return text


def strip_quotes(text: str) -> str:
    """Drop quoted earlier replies, keep the writer's own text."""
    if ">" in text:
        text = _RE_QUOTED_LINE.sub("", text)
    fwd = _RE_FORWARD_HEADER.search(text)
    if fwd:
        text = text[: fwd.start()] + "\n" + text[fwd.end() :]
    m = _RE_REPLY_HEADER.search(text)
    if m:
        before, after = text[: m.start()], text[m.end() :]
        if sum(ch.isalnum() for ch in before) >= 15:
            text = before
        else:
            text = _RE_HEADER_LINES.sub("", after)
            m2 = _RE_REPLY_HEADER.search(text)
            if m2:
                text = text[: m2.start()]
    return text


def clean_text(text: object, cap: int = SCAN_CAP) -> str:
    """Normalised text to scan: no HTML, no quotes, plain spaces, capped."""
    if text is None:
        return ""
    if isinstance(text, bytes | bytearray):
        text = bytes(text[: RAW_CAP * 4]).decode("utf-8", "replace")
    elif not isinstance(text, str):
        text = str(text)
    text = text[:RAW_CAP]
    if not text:
        return ""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = strip_html(text)
    if not text.isascii():
        text = _RE_SURROGATE.sub(" ", text)
        text = unicodedata.normalize("NFKC", text)
    text = _RE_CONTROL.sub(" ", text)
    text = strip_quotes(text)
    text = text[:cap]
    if "*" in text or "~" in text:
        text = _RE_MARKDOWN.sub("", text)
    text = _RE_HSPACE.sub(" ", text)
    text = _RE_MANY_NL.sub("\n\n", text)
    return text.strip()


def clean_subject(subject: object) -> str:
    if not subject or not isinstance(subject, str):
        return ""
    s = clean_text(subject[:1000], cap=500).replace("\n", " ")
    return _RE_SUBJECT_PREFIX.sub("", s).strip()
