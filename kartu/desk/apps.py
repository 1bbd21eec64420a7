from django.apps import AppConfig


class DeskConfig(AppConfig):
    name = "kartu.desk"
    label = "desk"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from kartu.desk import jobs  # noqa: F401  (registers periodic jobs)
