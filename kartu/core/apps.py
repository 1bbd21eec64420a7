from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "kartu.core"
    label = "core"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from kartu.core import jobs  # noqa: F401  (registers periodic jobs)
