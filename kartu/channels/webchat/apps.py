from django.apps import AppConfig


class WebchatConfig(AppConfig):
    name = "kartu.channels.webchat"
    label = "channel_webchat"

    def ready(self) -> None:
        from kartu.channels.webchat.adapter import WebchatAdapter
        from kartu.desk import channels

        channels.register(WebchatAdapter())
