"""The public web chat: usable without an account, the same bot and rules as every channel.

Each browser session is one sender (a random id kept in the session). Messages carry a
client-generated id, so a double submit is stored once. Rate-limited per session and per client
IP (the sign-in limits' client IP: the proxy's forwarded address when proxies are trusted).

"Saya bukan robot" (ALTCHA, kartu.accounts.altcha): the first message of a browser session needs
a solved, never-used challenge; the session then counts as human for an hour (its message limit
still applies). Without a valid solution nothing is stored (fails closed)."""

from __future__ import annotations

import secrets
import time
import uuid

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from kartu.accounts import altcha
from kartu.accounts.signin_limits import client_ip
from kartu.channels.webchat.adapter import CHANNEL
from kartu.core.ratelimit import Limit, RateLimiter
from kartu.desk import services

MAX_LENGTH = 2000
SESSION_LIMIT = Limit(20, 3600)
IP_LIMIT = Limit(120, 3600)
_limiter = RateLimiter()
HUMAN_SECONDS = 3600
HUMAN_KEY = "webchat_human_until"
ERROR_ID = "chat-error"  # the error text's id, named by the field it is about (aria-describedby)


def _is_human(request: HttpRequest) -> bool:
    return float(request.session.get(HUMAN_KEY) or 0) > time.time()


def _robot_check(request: HttpRequest) -> str:
    """"" when this session may send, else the error to show (the solution is spent)."""
    if _is_human(request):
        return ""
    try:
        altcha.consume(request.POST.get(altcha.FIELD_NAME))
    except altcha.Rejected as exc:
        return exc.message
    request.session[HUMAN_KEY] = time.time() + HUMAN_SECONDS
    return ""


def _sender(request: HttpRequest) -> str:
    sender = request.session.get("webchat_sender")
    if not sender:
        sender = secrets.token_urlsafe(16)
        request.session["webchat_sender"] = sender
    return str(sender)


def _messages(request: HttpRequest) -> list[dict[str, str]]:
    sender = request.session.get("webchat_sender")
    if not sender:
        return []
    return [{"id": str(m.pk), "direction": m.direction, "text": m.text}
            for m in services.sender_history(CHANNEL, str(sender))]


@require_http_methods(["GET", "POST"])
def chat(request: HttpRequest) -> HttpResponse:
    # the error, and what it is about: "text", "altcha" (marked invalid and described by it),
    # or "" (too many messages: nothing to correct)
    error, invalid = "", ""
    if request.method == "POST":
        text = (request.POST.get("text") or "").strip()
        client_id = (request.POST.get("client_id") or "").strip()[:64] or uuid.uuid4().hex
        ip = client_ip(request)  # behind a proxy too (KARTU_TRUSTED_PROXY_COUNT)
        if not text:
            error, invalid = _("Tulis pesan Anda terlebih dahulu."), "text"
        elif len(text) > MAX_LENGTH:
            error = _("Pesan terlalu panjang (paling banyak %(n)s karakter).") % {"n": MAX_LENGTH}
            invalid = "text"
        elif robot_error := _robot_check(request):
            error, invalid = robot_error, "altcha"
        elif not (_limiter.hit("webchat-session", _sender(request), SESSION_LIMIT).allowed
                  and _limiter.hit("webchat-ip", ip, IP_LIMIT).allowed):
            error = _("Terlalu banyak pesan. Silakan coba lagi nanti.")
        else:
            sender = _sender(request)
            services.receive(services.Inbound(CHANNEL, sender, f"{sender}:{client_id}", text))
        if request.headers.get("Accept") == "application/json":
            status = 400 if error else 200
            return JsonResponse({"ok": not error, "error": error, "field": invalid,
                                 "altcha": not _is_human(request),
                                 "messages": _messages(request)}, status=status)
        if not error:
            return redirect("webchat:chat")
    _sender(request)
    robot_check = None
    if not _is_human(request):
        robot_check = altcha.AltchaForm()["altcha"].as_widget(attrs=(
            {"aria-invalid": "true", "aria-describedby": ERROR_ID} if invalid == "altcha" else {}
        ))
    return render(request, "webchat/chat.html", {
        "messages_list": _messages(request), "error": error, "invalid": invalid,
        "error_id": ERROR_ID, "client_id": uuid.uuid4().hex, "max_length": MAX_LENGTH,
        "robot_check": robot_check, "text": (request.POST.get("text") or "") if error else "",
    })


@require_GET
def poll(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"messages": _messages(request)})
