from django.contrib import admin

from kartu.accounts.models import Link


@admin.register(Link)
class LinkAdmin(admin.ModelAdmin):
    """Every link, for staff. Agents confirm or reject ``pending_branch`` links (no contact on
    file) after seeing the KTP on the desk (/desk/branch/), which audits it with their name."""

    list_display = ("user", "person", "state", "created_at", "confirmed_at")
    list_filter = ("state",)
    raw_id_fields = ("user", "person")
    readonly_fields = ("created_at", "code_sent_to")
