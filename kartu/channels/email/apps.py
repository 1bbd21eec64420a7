from django.apps import AppConfig


class EmailChannelConfig(AppConfig):
    name = "kartu.channels.email"
    label = "channel_email"
    verbose_name = "Email channel"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from kartu.channels.email import jobs  # noqa: F401  (registers the IMAP poll job)
        from kartu.channels.email.adapter import EmailAdapter
        from kartu.core.processes import register_listener
        from kartu.desk.channels import register

        register(EmailAdapter())
        register_listener("smtp", ["smtp"])
