"""Web chat ("Tanya nomor KPJ") on the public site: the member's browser polls for replies, so
sending a reply is only marking it ready to be read."""

from __future__ import annotations

from kartu.desk.channels import Outgoing, SendResult

CHANNEL = "webchat"


class WebchatAdapter:
    name = CHANNEL

    def send(self, message: Outgoing) -> SendResult:
        return SendResult()
