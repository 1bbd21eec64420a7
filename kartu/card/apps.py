from django.apps import AppConfig


class CardConfig(AppConfig):
    name = "kartu.card"
    label = "card"
    default_auto_field = "django.db.models.BigAutoField"
    verbose_name = "Kartu Digital"
