from django.apps import AppConfig


class CardConfig(AppConfig):
    name = "kartu.card"
    label = "card"
    default_auto_field = "django.db.models.BigAutoField"
    verbose_name = "Kartu Digital"

    def ready(self) -> None:
        """Cards are re-issued (and the old ones revoked) when the registry data they show
        changes: see :mod:`kartu.card.receivers`."""
        from django.db.models.signals import post_save

        from kartu.card import receivers
        from kartu.registry.models import Membership, Person
        from kartu.registry.signals import persons_changed

        persons_changed.connect(receivers.on_persons_changed, dispatch_uid="card.persons_changed")
        post_save.connect(receivers.on_person_saved, sender=Person,
                          dispatch_uid="card.person_saved")
        post_save.connect(receivers.on_membership_saved, sender=Membership,
                          dispatch_uid="card.membership_saved")
