"""Raw email bytes → what the desk needs: who wrote, which message, what they asked, may we answer.

``parse(raw)`` never raises on malformed mail. It reads the message with ``email.policy.default``
and falls back, header by header and part by part, to lenient decoding (undeclared or unknown
charsets are tried as UTF-8, then Windows-1252, then decoded with replacement characters).

What comes out (``ParsedEmail``):

* ``sender``: the From address, lower-cased. ``Reply-To`` is deliberately ignored: the answer may
  carry KPJ numbers, and a forged ``Reply-To`` must not redirect it away from the From mailbox.
* ``message_id``: the Message-ID in ``<…>`` form — the desk's ``external_id``. A mail without one
  gets a stable synthetic id (a hash of the message without its trace headers), so a retried
  delivery of the same bytes is still recognised as a duplicate.
* ``text``: the request as the member wrote it — the text/plain part (or the HTML part turned
  into plain text; markup is never kept), without quoted earlier mail ("On … wrote:",
  "Pada … menulis:", ``>`` lines, Outlook's "From:/Sent:" block) and without the signature
  ("-- " block, "Sent from my iPhone"). ``body`` keeps the whole decoded text.
* attachments are never decoded, only counted (their types are listed; file names are not kept,
  they are often personal, e.g. "KTP Siti.jpg").
* ``auto_reply`` / ``auto_reply_reason``: RFC 3834 and Zammad's ``AutoResponseCheck`` — no answer
  to auto-submitted, bulk/list/junk, delivery reports, system senders, ourselves, or loops.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import policy
from email.header import decode_header, make_header
from email.message import Message as MimeMessage
from email.parser import BytesParser
from email.utils import getaddresses, parsedate_to_datetime
from html.parser import HTMLParser
from typing import Any

MAX_BODY_CHARS = 100_000  # decoded text kept of one mail
MAX_TEXT_CHARS = 20_000  # the request text handed to the desk
MAX_PART_BYTES = 2_000_000  # bytes of one text part that are decoded
MAX_PARTS = 200  # MIME parts looked at
MAX_DEPTH = 12  # multipart nesting followed
MAX_REFERENCES = 20

# --- reasons why a mail must not be answered automatically ------------------------------------
NO_SENDER = "no-sender"
AUTO_SUBMITTED = "auto-submitted"
SUPPRESSED = "auto-response-suppressed"
PRECEDENCE = "precedence"
MAILING_LIST = "mailing-list"
X_AUTOREPLY = "x-autoreply"
X_LOOP = "x-loop"
SPAM = "spam"
NULL_RETURN_PATH = "null-return-path"
DELIVERY_REPORT = "delivery-report"
SYSTEM_SENDER = "system-sender"
OWN_ADDRESS = "own-address"
OWN_MESSAGE_ID = "own-message-id"

_LIST_HEADERS = ("List-Id", "List-Unsubscribe", "List-Post", "List-Help", "List-Subscribe",
                 "List-Owner", "List-Archive")
_AUTOREPLY_HEADERS = ("X-Autoreply", "X-Autorespond", "X-Auto-Reply", "X-AutoReply-From")
_SYSTEM_LOCAL = re.compile(
    r"^(?:mailer-daemon|mailerdaemon|postmaster|abuse|root|daemon|nobody|bounces?|listserv|"
    r"majordomo|no[-_.]?reply|do[-_.]?not[-_.]?reply|dont[-_.]?reply)(?:$|[-_.+])",
    re.IGNORECASE,
)
_REPORT_TYPES = frozenset({"message/delivery-status", "message/global-delivery-status",
                           "message/disposition-notification", "message/feedback-report"})
_TRACE_HEADERS = frozenset({
    "received", "return-path", "delivered-to", "x-original-to", "x-envelope-from",
    "x-envelope-to", "authentication-results", "arc-seal", "arc-message-signature",
    "arc-authentication-results", "received-spf", "x-received", "x-virus-scanned",
    "x-google-smtp-source", "x-gm-message-state", "x-ms-exchange-organization-authas",
})

_ADDR = re.compile(r"[^\s<>@,;:\"()\[\]\\]{1,64}@[^\s<>@,;:\"()\[\]\\.]{1,63}"
                   r"(?:\.[^\s<>@,;:\"()\[\]\\.]{1,63})+")
_MSGID = re.compile(r"<([^<>\s]{1,900})>")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_HEADER_SPACE = re.compile(r"[\s\x00-\x1f\x7f]+")

_PARSER = BytesParser(policy=policy.default)


@dataclass(frozen=True)
class ParsedEmail:
    sender: str  # lower-cased addr-spec, "" when the mail has no usable From
    sender_name: str
    message_id: str  # "<…>", synthetic when the mail had none
    synthetic_id: bool
    subject: str
    text: str  # the request: quotes and signature removed
    body: str  # the whole decoded text
    in_reply_to: str = ""
    references: tuple[str, ...] = ()
    date: datetime | None = None
    auto_reply: bool = True
    auto_reply_reason: str = ""
    attachments: tuple[str, ...] = ()  # content types of ignored parts
    html_only: bool = False
    size: int = 0
    defects: int = 0

    def meta(self) -> dict[str, Any]:
        """Transport details stored on the inbound message (threading, auto-reply decision).

        The keys are the email channel's contract with the desk and the bot:
        ``message_id``, ``in_reply_to``, ``references`` (list), ``subject``, ``auto_reply``
        (bool; ``False`` = the bot must not answer), ``auto_reply_reason`` (only when False),
        ``synthetic_message_id`` (only when True), ``attachments`` (count), ``html_only``.
        """
        meta: dict[str, Any] = {
            "message_id": "" if self.synthetic_id else self.message_id,
            "in_reply_to": self.in_reply_to,
            "references": list(self.references),
            "subject": self.subject,
            "auto_reply": self.auto_reply,
            "attachments": len(self.attachments),
            "html_only": self.html_only,
        }
        if self.synthetic_id:
            meta["synthetic_message_id"] = True
        if not self.auto_reply:
            meta["auto_reply_reason"] = self.auto_reply_reason
        return meta


# --- headers ----------------------------------------------------------------------------------


_C1 = re.compile(r"[\x80-\x9f]")


def _c1_as_windows_1252(match: re.Match[str]) -> str:
    try:
        return bytes([ord(match.group(0))]).decode("windows-1252")
    except UnicodeDecodeError:
        return " "


def _clean_header(value: str) -> str:
    # Headers labelled ISO-8859-1 are Windows-1252 in practice (en dash, smart quotes).
    return _HEADER_SPACE.sub(" ", _C1.sub(_c1_as_windows_1252, value)).strip()


def _raw_header(msg: MimeMessage, name: str) -> str | None:
    wanted = name.lower()
    for key, value in msg.raw_items():
        if key.lower() == wanted:
            try:
                return str(make_header(decode_header(str(value))))
            except Exception:  # undecodable encoded-words: keep the raw text
                return str(value)
    return None


def header(msg: MimeMessage, name: str) -> str:
    """One header as clean text ("" when absent); never raises on a malformed header."""
    try:
        value = msg.get(name)
    except Exception:  # the structured parser choked: decode the raw value ourselves
        value = _raw_header(msg, name)
    if value is None:
        return ""
    try:
        text = str(value)
    except Exception:
        text = _raw_header(msg, name) or ""
    return _clean_header(text)


def has_header(msg: MimeMessage, name: str) -> bool:
    wanted = name.lower()
    return any(key.lower() == wanted for key in msg)


def normalise_address(value: str) -> str:
    """A bare address, lower-cased, or "" when ``value`` is not one."""
    value = value.strip().strip("<>").strip()
    if not value or len(value) > 254 or not _ADDR.fullmatch(value):
        return ""
    return value.lower()


def parse_address(value: str) -> tuple[str, str]:
    """(display name, address) of the first mailbox in an address header value."""
    try:
        pairs = getaddresses([value])
    except Exception:
        pairs = []
    for name, addr in pairs:
        address = normalise_address(addr)
        if address:
            return _clean_header(name), address
    found = _ADDR.search(value)
    return ("", found.group(0).lower()) if found else ("", "")


def _from(msg: MimeMessage) -> tuple[str, str]:
    try:
        mailboxes = [(str(m.display_name or ""), str(m.addr_spec))
                     for m in getattr(msg.get("From"), "addresses", ()) or ()]
    except Exception:  # the structured parser failed: read the text of the header below
        mailboxes = []
    for name, addr_spec in mailboxes:
        address = normalise_address(addr_spec)
        if address:
            return _clean_header(name), address
    return parse_address(header(msg, "From"))


def normalise_message_id(value: str) -> str:
    """``<id@host>`` from a Message-ID-like value; "" when there is none.

    Ids longer than the desk's column are replaced by a hash of themselves (still stable).
    """
    value = _CONTROL.sub("", value or "").strip()
    found = _MSGID.search(value)
    core = found.group(1) if found else (value.split()[0].strip("<>") if value.split() else "")
    if not core:
        return ""
    message_id = f"<{core}>"
    if len(message_id) > 250:
        digest = hashlib.sha256(core.encode("utf-8", "replace")).hexdigest()[:40]
        message_id = f"<{digest}@long-id.kartu.invalid>"
    return message_id


def message_ids(value: str) -> list[str]:
    return [normalise_message_id(f"<{m}>") for m in _MSGID.findall(value or "")]


def stable_digest(raw: bytes) -> str:
    """SHA-256 of the message without trace headers that a relay adds on each delivery."""
    data = raw.replace(b"\r\n", b"\n")
    head, _sep, body = data.partition(b"\n\n")
    kept: list[bytes] = []
    skipping = False
    for line in head.split(b"\n"):
        if line[:1] in (b" ", b"\t"):
            if not skipping:
                kept.append(line)
            continue
        name = line.split(b":", 1)[0].strip().lower().decode("latin-1")
        skipping = name in _TRACE_HEADERS or name.startswith("x-spam")
        if not skipping:
            kept.append(line)
    return hashlib.sha256(b"\n".join(kept) + b"\n\n" + body).hexdigest()


def synthetic_message_id(raw: bytes) -> str:
    return f"<{stable_digest(raw)[:40]}@no-message-id.kartu.invalid>"


def _date(value: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    if parsed.year < 1990 or parsed > datetime.now(UTC) + timedelta(hours=1):
        return None  # a clock far off or a forged date: the desk uses the receiving time
    return parsed


# --- auto-reply decision (RFC 3834, Zammad AutoResponseCheck) ---------------------------------


def should_auto_reply(
    msg: MimeMessage,
    *,
    sender: str,
    envelope_from: str | None = None,
    care_addresses: Iterable[str] = (),
    own_domain: str = "",
    message_id: str = "",
) -> tuple[bool, str]:
    """(may we answer automatically?, why not). The reason is one of this module's constants."""
    if not sender:
        return False, NO_SENDER
    auto_submitted = header(msg, "Auto-Submitted").split(";", 1)[0].strip().lower()
    if auto_submitted and auto_submitted != "no":
        return False, AUTO_SUBMITTED
    suppress = {v.strip().lower() for v in header(msg, "X-Auto-Response-Suppress").split(",")}
    if suppress & {"all", "autoreply"}:
        return False, SUPPRESSED
    precedence = header(msg, "Precedence").lower()
    if precedence in {"bulk", "list", "junk", "auto_reply", "auto-reply"}:
        return False, PRECEDENCE
    if any(has_header(msg, name) for name in _LIST_HEADERS):
        return False, MAILING_LIST
    for name in _AUTOREPLY_HEADERS:
        if has_header(msg, name) and header(msg, name).lower() not in {"no", "false", "0"}:
            return False, X_AUTOREPLY
    if has_header(msg, "X-Loop"):
        return False, X_LOOP
    if header(msg, "X-Spam-Flag").lower() == "yes" or \
            header(msg, "X-Spam-Status").lower().startswith("yes"):
        return False, SPAM
    return_path = header(msg, "Return-Path")
    if (has_header(msg, "Return-Path") and return_path.strip("<> ") == "") or \
            (envelope_from is not None and envelope_from.strip("<> ") == ""):
        return False, NULL_RETURN_PATH
    if _is_report(msg) or has_header(msg, "X-Failed-Recipients"):
        return False, DELIVERY_REPORT
    local = sender.rsplit("@", 1)[0]
    if _SYSTEM_LOCAL.match(local):
        return False, SYSTEM_SENDER
    if sender in {a.lower() for a in care_addresses if a}:
        return False, OWN_ADDRESS
    if own_domain and message_id.lower().rstrip(">").endswith("@" + own_domain.lower()):
        return False, OWN_MESSAGE_ID
    return True, ""


def _is_report(msg: MimeMessage) -> bool:
    try:
        if msg.get_content_type() == "multipart/report":
            return True
        for count, part in enumerate(msg.walk()):
            if count > MAX_PARTS:
                break
            if part.get_content_type() in _REPORT_TYPES:
                return True
    except Exception:  # a broken structure is no evidence of a report
        return False
    return False


# --- body -------------------------------------------------------------------------------------

_CHARSET_ALIASES = {
    "ks_c_5601-1987": "cp949", "x-sjis": "shift_jis", "windows-874": "cp874",
    "gb2312": "gb18030", "gbk": "gb18030", "iso-8859-8-i": "iso-8859-8", "utf8": "utf-8",
    "x-mac-roman": "mac_roman", "ansi_x3.4-1968": "ascii", "unknown-8bit": "",
    "x-unknown": "", "default": "", "us-ascii": "", "ascii": "",
    # WHATWG: labels of Latin-1 mean Windows-1252 in practice (smart quotes, euro sign).
    "iso-8859-1": "windows-1252", "latin1": "windows-1252", "latin-1": "windows-1252",
    "iso8859-1": "windows-1252",
}


def decode_bytes(data: bytes, charset: str | None) -> str:
    """Decode text whatever its label says: declared charset, UTF-8, Windows-1252, then replace."""
    label = (charset or "").strip().strip("\"'").lower()
    label = _CHARSET_ALIASES.get(label, label)
    candidates = [label] if label else []
    candidates += ["utf-8", "windows-1252"]
    for name in candidates:
        try:
            return data.decode(name)
        except (LookupError, UnicodeDecodeError, ValueError):
            continue
    try:
        return data.decode(label or "utf-8", errors="replace")
    except LookupError:
        return data.decode("utf-8", errors="replace")


_NOT_BASE64 = re.compile(rb"[^A-Za-z0-9+/]")
_BASE64_DEFECTS = ("InvalidBase64CharactersDefect", "InvalidBase64PaddingDefect",
                   "InvalidBase64LengthDefect")


def lenient_base64(text: str) -> bytes:
    """Base64 with junk, padding in the middle or a truncated tail (what broken mailers send)."""
    out = []
    for chunk in text.encode("ascii", "ignore").split(b"="):
        data = _NOT_BASE64.sub(b"", chunk)
        data = data[: len(data) - 1] if len(data) % 4 == 1 else data
        if data:
            out.append(base64.b64decode(data + b"=" * (-len(data) % 4)))
    return b"".join(out)


def _decode_part(part: MimeMessage) -> str:
    payload: Any
    try:
        before = len(part.defects)
        payload = part.get_payload(decode=True)
        raw_payload = part.get_payload()
        if isinstance(raw_payload, str) and any(
                type(d).__name__ in _BASE64_DEFECTS for d in part.defects[before:]):
            payload = lenient_base64(raw_payload)  # the standard decoder gave up
    except Exception:
        payload = None
    if not isinstance(payload, bytes):
        raw = part.get_payload()
        payload = raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else b""
    try:
        charset = part.get_content_charset()
    except Exception:
        charset = None
    return decode_bytes(payload[:MAX_PART_BYTES], charset).replace("\r\n", "\n")


def _is_attachment(part: MimeMessage) -> bool:
    try:
        if part.get_content_disposition() == "attachment":
            return True
        return bool(part.get_filename()) and not part.is_multipart()
    except Exception:  # a header we cannot read: do not trust the part as body text
        return True


@dataclass
class _Collected:
    segments: list[tuple[str, str]] = field(default_factory=list)  # (plain|html, text)
    attachments: list[str] = field(default_factory=list)
    seen: int = 0

    def has(self, kind: str) -> bool:
        return any(k == kind and t.strip() for k, t in self.segments)


def _collect(part: MimeMessage, depth: int, out: _Collected) -> None:
    out.seen += 1
    if out.seen > MAX_PARTS:
        return
    try:
        ctype = part.get_content_type()
    except Exception:
        ctype = "text/plain"
    if (depth and _is_attachment(part)) or ctype.startswith("message/"):
        out.attachments.append(ctype)  # forwarded mails and reports are not the request either
        return
    if part.is_multipart():
        if depth >= MAX_DEPTH:
            return
        children = [c for c in (part.get_payload() or []) if isinstance(c, MimeMessage)]
        if ctype == "multipart/alternative":
            options = []
            for child in children:
                sub = _Collected(seen=out.seen)
                _collect(child, depth + 1, sub)
                out.seen = sub.seen
                out.attachments.extend(sub.attachments)
                options.append(sub)
            chosen = next((o for o in options if o.has("plain")), None) or \
                next((o for o in options if o.has("html")), None)
            if chosen is not None:
                out.segments.extend(chosen.segments)
            return
        for child in children:
            _collect(child, depth + 1, out)
        return
    if ctype == "text/plain":
        out.segments.append(("plain", _decode_part(part)))
    elif ctype == "text/html":
        out.segments.append(("html", _decode_part(part)))
    else:  # images, PDFs, calendars …: never decoded
        out.attachments.append(ctype)


class _HtmlToText(HTMLParser):
    """Visible text of an HTML body; scripts, styles and markup dropped, quotes marked."""

    SKIP = frozenset({"script", "style", "head", "title", "noscript", "template", "svg",
                      "object", "iframe", "xml", "math", "select", "button"})
    BLOCK = frozenset({"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6",
                       "table", "ul", "ol", "section", "article", "header", "footer", "hr",
                       "pre", "address", "dd", "dt", "dl", "center", "form", "fieldset",
                       "blockquote", "tbody", "thead", "caption"})
    QUOTE_CLASSES = frozenset({"gmail_quote", "yahoo_quoted", "protonmail_quote",
                               "moz-cite-prefix", "ydp_quoted", "zmail_extra"})
    QUOTE_START = "\x01"
    QUOTE_END = "\x02"

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skipping = 0
        self.containers: list[bool] = []  # open div/blockquote: does it start a quote?

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIP:
            self.skipping += 1
            return
        if tag in ("div", "blockquote"):
            classes = set()
            for name, value in attrs:
                if name in ("class", "id") and value:
                    classes.update(value.lower().split())
            quote = tag == "blockquote" or bool(classes & self.QUOTE_CLASSES) or \
                any(c.endswith("yahoo_quoted") for c in classes)
            self.containers.append(quote)
            if quote:
                self.out.append(f"\n{self.QUOTE_START}\n")
                return
        if tag == "br":
            self.out.append("\n")
        elif tag in ("td", "th"):
            self.out.append(" ")  # table cells on one line, not glued together
        elif tag in self.BLOCK:
            self._line_break()

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self.out.append("\n")
        elif tag in self.BLOCK:
            self._line_break()

    def _line_break(self) -> None:
        """End the current line unless it is already ended (blocks do not add blank lines)."""
        for chunk in reversed(self.out):
            if chunk.strip(" "):
                if not chunk.rstrip(" ").endswith("\n"):
                    self.out.append("\n")
                return

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self.skipping = max(0, self.skipping - 1)
            return
        if tag in ("div", "blockquote") and self.containers and self.containers.pop():
            self.out.append(f"\n{self.QUOTE_END}\n")
            return
        if tag in self.BLOCK:
            self._line_break()

    def handle_data(self, data: str) -> None:
        if not self.skipping and "\xa0" in data and not data.replace("\xa0", "").strip():
            self.out.append("\xa0")  # "<p>&nbsp;</p>": an intended blank line
        elif not self.skipping:
            self.out.append(re.sub(r"\s+", " ", _CONTROL.sub(" ", data.replace("\x01", " ")
                                                              .replace("\x02", " "))))

    def text(self) -> str:
        depth = 0
        lines: list[str] = []
        for line in "".join(self.out).split("\n"):
            stripped = line.strip()
            if stripped == self.QUOTE_START:
                depth += 1
                continue
            if stripped == self.QUOTE_END:
                depth = max(0, depth - 1)
                continue
            stripped = re.sub(r"[ \t\u00a0]+", " ", stripped).strip()
            lines.append(("> " * depth + stripped) if depth and stripped else stripped)
        return _squeeze("\n".join(lines))


_TAG = re.compile(r"<[^<>]{0,2000}>")


def html_to_text(markup: str) -> str:
    """Plain text of an HTML document (never markup: tags, scripts and styles are dropped)."""
    markup = markup[:MAX_PART_BYTES]
    parser = _HtmlToText()
    try:
        parser.feed(markup)
        parser.close()
        return parser.text()
    except Exception:  # a parser bug on hostile markup: strip tags the crude way
        import html

        return _squeeze(html.unescape(_TAG.sub(" ", markup)))


def _squeeze(text: str) -> str:
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    return re.sub(r"\n{3,}", "\n\n", text).strip()


# --- quoted text and signatures ---------------------------------------------------------------

_REPLY_LINE = re.compile(
    r"^\s*(?:On\b.{0,300}\bwrote\s*:|Pada\b.{0,300}\bmenulis\s*:|"
    r"-{2,}\s*(?:Original Message|Pesan Asli|Pesan asli|Reply message|Pesan Balasan)\s*-{2,})"
    r"\s*$",
    re.IGNORECASE,
)
_REPLY_START = re.compile(r"^\s*(?:On|Pada)\b", re.IGNORECASE)
_FROM_LINE = re.compile(r"^\s*\**(?:From|Dari)\s*:\**\s*\S", re.IGNORECASE)
_HEADER_LINE = re.compile(
    r"^\s*\**(?:Sent|Date|Dikirim|Tanggal|To|Kepada|Subject|Subjek|Perihal|Cc)\s*:", re.IGNORECASE
)
_RULE_LINE = re.compile(r"^\s*_{10,}\s*$")
_FOOTER_LINE = re.compile(
    r"^\s*(?:Sent from (?:my )?\S.{0,60}|Dikirim dari \S.{0,60}|Kirim dari \S.{0,60}|"
    r"Get Outlook for \S.{0,40}|Sent via \S.{0,60}|Sent with \S.{0,60})\s*$",
    re.IGNORECASE,
)
_LONG_NUMBER = re.compile(r"(?<!\d)(?:\d[ .\-]?){15}\d(?!\d)")


def _reply_header_at(lines: list[str], i: int) -> int:
    """How many lines starting at ``i`` form a reply attribution header (0 = none)."""
    line = lines[i]
    if _REPLY_LINE.match(line):
        return 1
    if i + 1 < len(lines) and _REPLY_START.match(line) and \
            _REPLY_LINE.match(f"{line} {lines[i + 1].strip()}"):
        return 2
    if _FROM_LINE.match(line):
        following = [ln for ln in lines[i + 1 : i + 6] if ln.strip()]
        if sum(bool(_HEADER_LINE.match(ln)) for ln in following) >= 2:
            return 1
    if _RULE_LINE.match(line):
        nxt = next((ln for ln in lines[i + 1 : i + 3] if ln.strip()), "")
        if _FROM_LINE.match(nxt):
            return 1
    return 0


def _is_quote(line: str) -> bool:
    return line.lstrip().startswith(">")


def strip_quotes(text: str) -> str:
    """The new text of a reply: quoted earlier mail and its attribution line removed."""
    lines = text.split("\n")
    for i in range(len(lines)):
        span = _reply_header_at(lines, i)
        if not span:
            continue
        before = [ln for ln in lines[:i] if ln.strip() and not _is_quote(ln)]
        if before:  # top-posted: everything from the attribution on is the earlier mail
            lines = lines[:i]
        elif _FROM_LINE.match(lines[i]) or _RULE_LINE.match(lines[i]):
            pass  # an Outlook block at the very top is a forward: keep it
        else:  # bottom-posted or inline: drop the attribution, keep the unquoted answer
            lines = lines[:i] + lines[i + span :]
        break
    return "\n".join(ln for ln in lines if not _is_quote(ln))


def strip_signature(text: str) -> str:
    """Text without the "-- " signature block or a "Sent from my …" footer."""
    lines = text.split("\n")
    for i, line in enumerate(lines):
        content_before = any(ln.strip() for ln in lines[:i])
        if not content_before:
            continue
        rest = [ln for ln in lines[i + 1 :] if ln.strip()]
        if line.rstrip() in ("--", "-- ") or line == "-- ":
            # A block that carries a long id number is data, not a signature: keep it.
            if len(rest) <= 8 and not _LONG_NUMBER.search("\n".join(rest)):
                return "\n".join(lines[:i])
        elif _FOOTER_LINE.match(line) and len(rest) <= 3:
            return "\n".join(lines[:i])
    return text


def request_text(body: str) -> str:
    """What the member wrote in this mail: no quotes, no signature (falls back to the body)."""
    text = _squeeze(strip_signature(strip_quotes(body)))
    if not text:
        text = _squeeze("\n".join(ln for ln in body.split("\n") if not _is_quote(ln))) or body
    return text[:MAX_TEXT_CHARS]


# --- the whole message ------------------------------------------------------------------------


def _read(raw: bytes) -> MimeMessage:
    try:
        return _PARSER.parsebytes(raw)
    except Exception:  # should not happen (the parser records defects); keep the bytes as text
        fallback = MimeMessage(policy=policy.default)
        fallback.set_payload(raw.decode("utf-8", errors="replace"))
        return fallback


def parse(
    raw: bytes,
    *,
    envelope_from: str | None = None,
    care_addresses: Iterable[str] = (),
    own_domain: str = "",
) -> ParsedEmail:
    """Parse one raw RFC 5322 message. ``envelope_from`` is SMTP's MAIL FROM ("<>" = null)."""
    msg = _read(raw)
    sender_name, sender = _from(msg)
    message_id = normalise_message_id(header(msg, "Message-ID"))
    synthetic = not message_id
    if synthetic:
        message_id = synthetic_message_id(raw)
    collected = _Collected()
    with contextlib.suppress(RecursionError):  # absurd nesting: whatever was collected
        _collect(msg, 0, collected)
    texts = []
    for kind, segment in collected.segments:
        texts.append(html_to_text(segment) if kind == "html" else segment)
    body = _squeeze("\n\n".join(t for t in texts if t.strip()))[:MAX_BODY_CHARS]
    html_only = collected.has("html") and not collected.has("plain")
    care = list(care_addresses)
    allowed, reason = should_auto_reply(msg, sender=sender, envelope_from=envelope_from,
                                        care_addresses=care, own_domain=own_domain,
                                        message_id="" if synthetic else message_id)
    references = message_ids(header(msg, "References"))
    if len(references) > MAX_REFERENCES:  # RFC 5322: keep the first and the latest ones
        references = references[:1] + references[-(MAX_REFERENCES - 1) :]
    in_reply_to = next(iter(message_ids(header(msg, "In-Reply-To"))), "")
    return ParsedEmail(
        sender=sender,
        sender_name=sender_name,
        message_id=message_id,
        synthetic_id=synthetic,
        subject=header(msg, "Subject")[:500],
        text=request_text(body),
        body=body,
        in_reply_to=in_reply_to,
        references=tuple(references),
        date=_date(header(msg, "Date")),
        auto_reply=allowed,
        auto_reply_reason=reason,
        attachments=tuple(collected.attachments),
        html_only=html_only,
        size=len(raw),
        defects=len(getattr(msg, "defects", []) or []),
    )
