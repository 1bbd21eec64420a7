from __future__ import annotations

import pytest

from kartu.accounts.altcha import solved_payload
from kartu.desk.models import Message

pytestmark = pytest.mark.django_db(transaction=True)

ID_MESSAGE = ("Nama saya Siti Nurhaliza, lahir di Jakarta 17 Agustus 1990, "
              "NIK 3174055708900003")


def test_the_chat_answers_with_the_kpj(client, loaded_registry):
    page = client.get("/tanya-kpj/")
    assert page.status_code == 200 and "Tanya nomor KPJ" in page.content.decode()
    assert "<altcha-widget" in page.content.decode()
    response = client.post("/tanya-kpj/", {"text": ID_MESSAGE, "client_id": "c1",
                                           "altcha": solved_payload()},
                           HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    texts = [m["text"] for m in response.json()["messages"]]
    assert texts[0] == ID_MESSAGE
    assert "12345678901" in texts[1] and "10987654321" in texts[1]


def test_a_double_submit_is_stored_once(client, loaded_registry):
    for _ in range(2):
        client.post("/tanya-kpj/", {"text": "halo", "client_id": "same",
                                    "altcha": solved_payload()},
                    HTTP_ACCEPT="application/json")
    assert Message.objects.filter(direction="in").count() == 1


def test_each_browser_sees_only_its_own_conversation(client, loaded_registry):
    from django.test import Client

    client.post("/tanya-kpj/", {"text": ID_MESSAGE, "client_id": "a",
                                "altcha": solved_payload()})
    other = Client()
    assert other.get("/tanya-kpj/pesan").json() == {"messages": []}
    assert "12345678901" not in other.get("/tanya-kpj/").content.decode()


def test_the_plain_form_posts_and_redirects(client, loaded_registry):
    response = client.post("/tanya-kpj/", {"text": ID_MESSAGE, "client_id": "b",
                                           "altcha": solved_payload()})
    assert response.status_code == 302
    page = client.get(response["Location"]).content.decode()
    assert "12345678901" in page


def test_markup_is_never_rendered(client, loaded_registry):
    client.post("/tanya-kpj/", {"text": "<script>alert(1)</script>", "client_id": "x",
                                "altcha": solved_payload()})
    page = client.get("/tanya-kpj/").content.decode()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_empty_and_oversized_messages_get_a_clear_error(client, loaded_registry):
    empty = client.post("/tanya-kpj/", {"text": "  "}, HTTP_ACCEPT="application/json")
    assert empty.status_code == 400 and empty.json()["error"]
    huge = client.post("/tanya-kpj/", {"text": "a" * 2001}, HTTP_ACCEPT="application/json")
    assert huge.status_code == 400 and "2000" in huge.json()["error"]


def test_a_session_is_rate_limited(client, loaded_registry):
    codes = [client.post("/tanya-kpj/", {"text": f"halo {i}", "client_id": str(i),
                                         "altcha": solved_payload() if i == 0 else ""},
                         HTTP_ACCEPT="application/json").status_code for i in range(21)]
    assert codes[:20] == [200] * 20 and codes[20] == 400


def test_without_a_robot_check_nothing_is_stored(client, loaded_registry):
    """No JavaScript, no solution, a forged or a replayed one: refused, nothing stored."""
    from django.test import Client

    missing = client.post("/tanya-kpj/", {"text": ID_MESSAGE, "client_id": "n1"})
    assert missing.status_code == 200 and "Saya bukan robot" in missing.content.decode()
    assert ID_MESSAGE in missing.content.decode()  # the text is kept for another try
    forged = client.post("/tanya-kpj/", {"text": "halo", "altcha": "e30="},
                         HTTP_ACCEPT="application/json")
    assert forged.status_code == 400 and forged.json()["altcha"] is True
    payload = solved_payload()
    assert Client().post("/tanya-kpj/", {"text": "halo", "altcha": payload},
                         HTTP_ACCEPT="application/json").status_code == 200
    replay = Client().post("/tanya-kpj/", {"text": "halo lagi", "altcha": payload},
                           HTTP_ACCEPT="application/json")
    assert replay.status_code == 400 and "sudah dipakai" in replay.json()["error"]
    assert Message.objects.filter(direction="in").count() == 1


def test_one_check_per_session(client, loaded_registry):
    first = client.post("/tanya-kpj/", {"text": "halo", "altcha": solved_payload()},
                        HTTP_ACCEPT="application/json")
    assert first.json()["altcha"] is False
    second = client.post("/tanya-kpj/", {"text": "halo lagi"}, HTTP_ACCEPT="application/json")
    assert second.status_code == 200
    assert "<altcha-widget" not in client.get("/tanya-kpj/").content.decode()


def test_the_ip_limit_counts_the_client_behind_a_trusted_proxy(settings, monkeypatch,
                                                              loaded_registry):
    """Behind a proxy every request comes from the proxy's address: with the proxy trusted
    (KARTU_TRUSTED_PROXY_COUNT), each visitor has its own budget, as for signing in."""
    from django.test import Client

    from kartu.channels.webchat import views
    from kartu.core.ratelimit import Limit

    settings.ALLAUTH_TRUSTED_PROXY_COUNT = 1
    monkeypatch.setattr(views, "IP_LIMIT", Limit(1, 3600))

    def send(forwarded_for: str) -> int:
        return Client(REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=forwarded_for).post(
            "/tanya-kpj/", {"text": "halo", "altcha": solved_payload()},
            HTTP_ACCEPT="application/json",
        ).status_code

    assert send("198.51.100.7") == 200
    assert send("198.51.100.8") == 200  # another visitor through the same proxy
    assert send("198.51.100.7") == 400  # the first visitor's budget is spent


def _tag(html: str, start: str) -> str:
    import re

    match = re.search(rf"<{start}[^>]*>", html)
    assert match, html
    return match.group(0)


def test_the_error_is_tied_to_what_it_is_about(client, loaded_registry):
    page = client.get("/tanya-kpj/").content.decode()
    assert "<title>Tanya nomor KPJ · kartu</title>" in page
    assert "aria-describedby" not in _tag(page, "textarea")

    empty = client.post("/tanya-kpj/", {"text": "  ", "altcha": solved_payload()})
    html = empty.content.decode()
    textarea = _tag(html, "textarea")
    assert 'aria-describedby="chat-error"' in textarea and 'aria-invalid="true"' in textarea
    assert 'id="chat-error" class="error" role="alert">Tulis pesan' in html
    assert "aria-invalid" not in _tag(html, "altcha-widget")

    robot = client.post("/tanya-kpj/", {"text": ID_MESSAGE}).content.decode()
    widget = _tag(robot, "altcha-widget")
    assert 'aria-describedby="chat-error"' in widget and 'aria-invalid="true"' in widget
    assert 'id="chat-error" class="error" role="alert">Centang kotak' in robot
    assert "aria-invalid" not in _tag(robot, "textarea")  # the message itself is fine

    as_json = client.post("/tanya-kpj/", {"text": ID_MESSAGE}, HTTP_ACCEPT="application/json")
    assert as_json.json()["field"] == "altcha"
