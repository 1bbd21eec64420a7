"""MIME parsing, quote/signature removal and the auto-reply decision, one fixture at a time."""

from __future__ import annotations

from pathlib import Path

import pytest

from kartu.channels.email import parse as p
from kartu.channels.email.parse import ParsedEmail, parse

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
CARE = "care@kartu.localhost"


def raw(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def parsed(name: str, **kwargs: object) -> ParsedEmail:
    return parse(raw(name), care_addresses=[CARE], own_domain="kartu.localhost",
                 **kwargs)  # type: ignore[arg-type]


def test_gmail_plain_and_html_uses_the_plain_part():
    mail = parsed("gmail_multipart.eml")
    assert mail.sender == "siti.nurhaliza90@gmail.com"
    assert mail.message_id == "<CAJ5x+Zq1nW3pK8=tY0vB2mN4rE6sT8uV0wX2yZ4aB6cD8eF0gH@mail.gmail.com>"
    assert not mail.synthetic_id
    assert mail.subject == "Permohonan informasi nomor KPJ"
    assert "NIK: 3174055708900003" in mail.text
    assert "Tempat, tanggal lahir: Jakarta, 17 Agustus 1990" in mail.text
    assert "🙏" in mail.text  # quoted-printable UTF-8 decoded
    assert "<div" not in mail.text and "=3D" not in mail.text
    assert mail.text.count("3174055708900003") == 1  # one alternative, not both
    assert not mail.html_only
    assert mail.auto_reply and mail.auto_reply_reason == ""
    assert mail.date is not None and mail.date.isoformat() == "2024-06-03T09:12:31+07:00"


def test_outlook_html_only_windows_1252_and_its_quoted_block():
    mail = parsed("outlook_html_cp1252.eml")
    assert mail.html_only
    assert mail.sender == "muhammad.rizki77@outlook.co.id"
    assert mail.sender_name == "Rizki, Muhammad"
    # windows-1252 smart quotes and en dash
    assert "berikut data saya – mohon dicek “nomor KPJ” saya" in mail.text
    assert "NIK: 3505120910770018" in mail.text
    assert "TTL: Blitar, 09-10-1977" in mail.text
    # no markup, no CSS, no Word XML
    for junk in ("<", "MsoNormal", "font-family", "Cambria", "o:p"):
        assert junk not in mail.text
    # Outlook's "From:/Sent:" block and what follows it is the earlier mail, not the request
    assert "Sent:" not in mail.text and "Budi Santoso" not in mail.text
    assert "Budi Santoso" in mail.body  # kept in the whole body
    assert mail.in_reply_to == "<171738000012.4242.1234567890123456789.kartu@kartu.localhost>"
    assert mail.references == (mail.in_reply_to,)
    assert mail.auto_reply  # a member answering our reply is answered


def test_yahoo_reply_keeps_only_the_new_text():
    mail = parsed("yahoo_reply_quoted.eml")
    assert mail.text == ("Nama saya Budi Santoso, lahir di Surabaya tanggal 12 Mei 1985.\n"
                         "NIK 3578011205850007")
    for quoted in ("menulis:", "wrote:", "Siti Aminah", "3524107009820012", "Tolong dibantu",
                   "Dikirim dari Yahoo Mail"):
        assert quoted not in mail.text
    assert "3524107009820012" in mail.body
    assert mail.references == ("<1234567890.1111111.1717500000000@mail.yahoo.com>",
                               "<171756000045.5151.9876543210987654321.kartu@kartu.localhost>")


def test_quoted_printable_iso_8859_1_with_a_signature():
    mail = parsed("qp_iso8859.eml")
    assert mail.sender_name == "André Siregar"
    assert mail.subject == "Permohonan nomor KPJ – André Siregar"  # =96 read as Windows-1252
    assert "Nama lengkap  : André Siregar" in mail.text
    assert "Data saya sebagai berikut:" in mail.text  # soft line break joined
    assert "lupa kata sandi « dan email lama sudah tidak aktif »" in mail.text
    assert "NIK           : 1271032104880005" in mail.text
    # the "-- " signature (with a phone number) is not part of the request
    assert "Staf Gudang" not in mail.text and "0812 6543 2109" not in mail.text
    assert mail.text.endswith("Terima kasih.")
    assert "Staf Gudang – PT Contoh Sejahtera" in mail.body


def test_base64_utf8_with_ktp_photo_and_pdf_attachments_ignored():
    mail = parsed("base64_attachment.eml")
    assert mail.subject == "Kartu KPJ hilang 😢"
    assert "NIK: 3273054511900012" in mail.text
    assert "🙏" in mail.text and "😊" in mail.text
    assert mail.attachments == ("image/jpeg", "application/pdf", "text/plain")
    # nothing of the attachments leaks into the text: not the JPEG bytes, not the PDF, not the
    # attached .txt file even though it is text/plain
    for leak in ("JFIF", "%PDF", "<script>", "9999999999999999", "1111111111111111",
                 "DEWI LESTARI NINGSIH NIK"):
        assert leak not in mail.text and leak not in mail.body
    assert mail.meta()["attachments"] == 3
    assert "KTP_Dewi" not in repr(mail.meta())  # file names are not kept


def test_out_of_office_auto_reply_is_not_answered():
    mail = parsed("auto_reply_ooo.eml")
    assert not mail.auto_reply
    assert mail.auto_reply_reason == p.AUTO_SUBMITTED
    assert mail.meta()["auto_reply"] is False
    assert mail.meta()["auto_reply_reason"] == "auto-submitted"


def test_mailing_list_mail_is_not_answered():
    mail = parsed("mailing_list.eml")
    assert (mail.auto_reply, mail.auto_reply_reason) == (False, p.MAILING_LIST)


def test_delivery_report_is_not_answered_and_its_parts_are_not_the_text():
    mail = parsed("bounce_dsn.eml")
    assert (mail.auto_reply, mail.auto_reply_reason) == (False, p.DELIVERY_REPORT)
    assert "Reporting-MTA" not in mail.text and "Auto-Submitted" not in mail.text
    assert "message/delivery-status" in mail.attachments


def test_mailer_daemon_is_not_answered():
    mail = parsed("mailer_daemon.eml")
    assert (mail.auto_reply, mail.auto_reply_reason) == (False, p.SYSTEM_SENDER)
    assert mail.sender == "mailer-daemon@mail.lama.co.id"
    assert mail.date is not None  # "-0000" (unknown zone) read as UTC


def test_huge_mail_is_parsed_quickly_and_capped():
    mail = parsed("huge.eml")
    assert mail.size > 300_000
    assert mail.attachments == ("video/mp4",)
    assert len(mail.text) <= p.MAX_TEXT_CHARS
    assert mail.text.startswith("Nama Yanti Kusuma, lahir di Semarang 3 Maret 1992")


def test_html_with_script_and_sql_yields_inert_plain_text():
    mail = parsed("html_script_sql.eml")
    assert mail.html_only
    for active in ("alert", "document.cookie", "onerror", "onload", "javascript:", "<script",
                   "<b>", "<img", "isi iframe", "Judul rahasia", "aktifkan javascript",
                   "background"):
        assert active not in mail.text, active
    # the member's words are kept verbatim, as text (the ORM stores them as parameters)
    assert "nama saya Robert'); DROP TABLE desk_message;--" in mail.text
    assert "NIK: 1' OR '1'='1 ; SELECT * FROM registry_person WHERE 1=1; --" in mail.text
    assert "Tanggal lahir: 1 Januari 1990 & tempat <Jakarta>" in mail.text  # entities decoded
    assert mail.subject == '<script>alert("subjek")</script> KPJ'  # text, never rendered


def test_missing_message_id_gets_a_stable_synthetic_one():
    data = raw("no_message_id.eml")
    first = parse(data)
    assert first.synthetic_id
    assert first.message_id.startswith("<") and first.message_id.endswith(
        "@no-message-id.kartu.invalid>")
    assert parse(data).message_id == first.message_id
    # a relay adding its trace header on redelivery does not change the id …
    relayed = b"Received: from relay2 by mx2; Sat, 15 Jun 2024 19:35:00 +0700\r\n" + data
    assert parse(relayed).message_id == first.message_id
    # … another message does
    assert parse(data.replace(b"nik 1371021708750012", b"nik 1371021708750013")).message_id \
        != first.message_id
    assert first.meta()["message_id"] == ""  # nothing to thread a reply on
    assert first.meta()["synthetic_message_id"] is True
    assert first.text.startswith("nama agus salim")


def test_malformed_from_and_encoded_words_do_not_crash():
    mail = parsed("malformed_from.eml")
    assert mail.sender == "siti.nurhaliza@contoh.id"  # unclosed "<", mixed case
    assert "Siti" in mail.sender_name
    assert mail.subject.startswith("Nomor KPJ – tolong")
    assert mail.date is None  # "Sun, 32 Jun 2024 25:61:00 +9999"
    assert "NIK: 3174055708900003" in mail.text  # base64 body, unknown charset
    assert mail.auto_reply


@pytest.mark.parametrize("name", sorted(f.name for f in FIXTURES.glob("*.eml")))
def test_every_fixture_parses_and_truncations_do_not_crash(name):
    data = raw(name)
    for cut in (len(data), len(data) // 2, 100, 10, 0):
        result = parse(data[:cut])
        assert isinstance(result.text, str) and isinstance(result.message_id, str)
        assert result.message_id


@pytest.mark.parametrize("garbage", [
    b"", b"\x00\xff\xfe" * 100, b"Subject: =?utf-8?b?////?=\r\n\r\n\xff",
    b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n" * 50,
    b"From: <>\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p><b><i>" * 30,
    b"Content-Type: multipart/alternative\r\n\r\nno boundary at all",
])
def test_garbage_is_parsed_safely(garbage):
    result = parse(garbage)
    assert isinstance(result.text, str)
    assert result.message_id.endswith("@no-message-id.kartu.invalid>")


def test_deeply_nested_multipart_does_not_recurse_without_end():
    parts = [f"Content-Type: multipart/mixed; boundary=b{i}\r\n\r\n--b{i}\r\n"
             for i in range(300)]
    data = ("".join(parts) + "Content-Type: text/plain\r\n\r\nhalo\r\n").encode()
    assert isinstance(parse(data).text, str)


# --- the auto-reply rules, header by header ---------------------------------------------------

BASE = (b"From: Budi <budi@contoh.id>\r\nTo: care@kartu.localhost\r\nSubject: KPJ\r\n"
        b"Message-ID: <abc@contoh.id>\r\n")


@pytest.mark.parametrize(("headers", "reason"), [
    (b"Auto-Submitted: auto-generated\r\n", p.AUTO_SUBMITTED),
    (b"Auto-Submitted: auto-replied; owner-email=\"x@y.id\"\r\n", p.AUTO_SUBMITTED),
    (b"Precedence: bulk\r\n", p.PRECEDENCE),
    (b"Precedence: junk\r\n", p.PRECEDENCE),
    (b"Precedence: list\r\n", p.PRECEDENCE),
    (b"Precedence: auto_reply\r\n", p.PRECEDENCE),
    (b"List-Id: <x.lists.id>\r\n", p.MAILING_LIST),
    (b"List-Unsubscribe: <mailto:u@x.id>\r\n", p.MAILING_LIST),
    (b"X-Autoreply: yes\r\n", p.X_AUTOREPLY),
    (b"X-Autorespond: vacation\r\n", p.X_AUTOREPLY),
    (b"X-Loop: care@kartu.localhost\r\n", p.X_LOOP),
    (b"X-Auto-Response-Suppress: All\r\n", p.SUPPRESSED),
    (b"X-Auto-Response-Suppress: DR, AutoReply\r\n", p.SUPPRESSED),
    (b"Return-Path: <>\r\n", p.NULL_RETURN_PATH),
    (b"X-Failed-Recipients: a@b.id\r\n", p.DELIVERY_REPORT),
    (b"X-Spam-Flag: YES\r\n", p.SPAM),
])
def test_headers_that_forbid_an_automatic_answer(headers, reason):
    mail = parse(BASE + headers + b"\r\nhalo\r\n", care_addresses=[CARE])
    assert (mail.auto_reply, mail.auto_reply_reason) == (False, reason)


@pytest.mark.parametrize("headers", [
    b"Auto-Submitted: no\r\n", b"Precedence: first-class\r\n",
    b"X-Auto-Response-Suppress: DR, RN, NRN\r\n", b"Return-Path: <budi@contoh.id>\r\n",
])
def test_headers_that_still_allow_an_answer(headers):
    assert parse(BASE + headers + b"\r\nhalo\r\n", care_addresses=[CARE]).auto_reply


def test_null_envelope_sender_forbids_an_answer():
    mail = parse(BASE + b"\r\nhalo\r\n", envelope_from="<>")
    assert (mail.auto_reply, mail.auto_reply_reason) == (False, p.NULL_RETURN_PATH)
    assert parse(BASE + b"\r\nhalo\r\n", envelope_from="budi@contoh.id").auto_reply


@pytest.mark.parametrize(("sender", "reason"), [
    ("MAILER-DAEMON@mx.id", p.SYSTEM_SENDER), ("postmaster@x.id", p.SYSTEM_SENDER),
    ("noreply@bank.id", p.SYSTEM_SENDER), ("no-reply@app.id", p.SYSTEM_SENDER),
    ("no_reply@app.id", p.SYSTEM_SENDER), ("donotreply@app.id", p.SYSTEM_SENDER),
    ("noreply-dmarc-support@google.com", p.SYSTEM_SENDER),
    ("Care@Kartu.Localhost", p.OWN_ADDRESS),
])
def test_senders_that_are_never_answered(sender, reason):
    data = f"From: X <{sender}>\r\nMessage-ID: <m@x.id>\r\n\r\nhalo\r\n".encode()
    mail = parse(data, care_addresses=[CARE])
    assert (mail.auto_reply, mail.auto_reply_reason) == (False, reason)


@pytest.mark.parametrize("sender", ["noreen@contoh.id", "rootanto@contoh.id",
                                    "budi.noreply.fan@x.id"])
def test_lookalike_senders_are_answered(sender):
    data = f"From: {sender}\r\nMessage-ID: <m@x.id>\r\n\r\nhalo\r\n".encode()
    assert parse(data, care_addresses=[CARE]).auto_reply


def test_our_own_message_id_is_a_loop():
    data = BASE.replace(b"<abc@contoh.id>", b"<1717.42.99.kartu@kartu.localhost>") + b"\r\nx\r\n"
    mail = parse(data, care_addresses=[CARE], own_domain="kartu.localhost")
    assert (mail.auto_reply, mail.auto_reply_reason) == (False, p.OWN_MESSAGE_ID)


def test_no_from_address():
    mail = parse(b"From: just a name\r\nMessage-ID: <m@x.id>\r\n\r\nhalo\r\n")
    assert (mail.sender, mail.auto_reply, mail.auto_reply_reason) == ("", False, p.NO_SENDER)


# --- helpers ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [
    ("<abc@x.id>", "<abc@x.id>"), ("  <abc@x.id> (comment)", "<abc@x.id>"),
    ("abc@x.id", "<abc@x.id>"), ("", ""), ("<>", ""),
])
def test_normalise_message_id(value, expected):
    assert p.normalise_message_id(value) == expected


def test_overlong_message_id_is_hashed_stably():
    long_id = "<" + "a" * 400 + "@x.id>"
    first = p.normalise_message_id(long_id)
    assert len(first) < 255 and first == p.normalise_message_id(long_id)


@pytest.mark.parametrize(("data", "charset", "expected"), [
    ("é".encode(), "iso-8859-1", "Ã©"),  # the label is honoured
    (b"\x93x\x94", "iso-8859-1", "“x”"),  # Latin-1 label, Windows-1252 bytes
    ("é".encode(), None, "é"),
    ("é".encode(), "us-ascii", "é"),  # mislabelled UTF-8
    (b"caf\xe9", "utf-8", "café"),  # mislabelled Windows-1252
    (b"caf\xe9", "x-no-such-charset", "café"),
    (b"\x81\x8d\x8f", "utf-8", "\ufffd" * 3),  # nothing fits: replacement characters
])
def test_decode_bytes(data, charset, expected):
    assert p.decode_bytes(data, charset) == expected


def test_bottom_posted_reply_keeps_the_answer_below_the_quote():
    body = ("On Mon, 3 Jun 2024, care@kartu.localhost wrote:\n> kirim NIK\n\n"
            "NIK saya 3273054511900012")
    assert p.request_text(body) == "NIK saya 3273054511900012"


def test_wrapped_gmail_attribution_over_two_lines():
    body = ("Nama: Budi\n\nOn Mon, Jun 3, 2024 at 9:00 AM Layanan KPJ <\ncare@kartu.localhost> "
            "wrote:\n\n> Contoh: NIK 3273xxxxxxxxxxxx")
    assert p.request_text(body) == "Nama: Budi"


def test_signature_that_holds_the_nik_is_kept():
    body = "Halo admin,\n-- \nBudi Santoso\nNIK 3273 0545 1190 0012"
    assert "3273 0545 1190 0012" in p.request_text(body)


def test_everything_quoted_falls_back_to_the_body():
    assert p.request_text("> NIK 3273054511900012") == "> NIK 3273054511900012"


def test_html_blockquote_and_gmail_quote_are_quotes():
    html = ('<div>Nama: Budi</div><div class="gmail_quote"><div class="gmail_attr">On Mon, '
            'care wrote:</div><blockquote>Contoh: Siti Aminah</blockquote></div>')
    text = p.html_to_text(html)
    assert text.startswith("Nama: Budi")
    assert p.request_text(text) == "Nama: Budi"


@pytest.mark.parametrize(("text", "expected"), [
    ("SGVsbG8=", b"Hello"), ("SGVsbG8", b"Hello"), ("SGVs\nbG8=\n", b"Hello"),
    ("SGVsbG8=SGk=", b"HelloHi"), ("SGVsbG8=\x00$$", b"Hello"), ("", b""),
])
def test_lenient_base64(text, expected):
    assert p.lenient_base64(text) == expected


def test_broken_base64_body_is_still_read():
    data = (FIXTURES / "malformed_from.eml").read_bytes() + b"\r\n\xff\xfe\x00garbage\r\n"
    assert "NIK: 3174055708900003" in parse(data).text


def test_html_table_cells_stay_apart():
    html = ("<table><tr><td>Nama</td><td>: Siti Nurhaliza</td></tr>"
            "<tr><th>NIK</th><td>: 3174055708900003</td></tr></table>")
    assert p.html_to_text(html) == "Nama : Siti Nurhaliza\nNIK : 3174055708900003"
