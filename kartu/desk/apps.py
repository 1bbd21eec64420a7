from django.apps import AppConfig


class DeskConfig(AppConfig):
    name = "kartu.desk"
    label = "desk"
    default_auto_field = "django.db.models.BigAutoField"
