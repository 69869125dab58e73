from django.contrib import admin

from erumlab.sessions.models import Grant, Profile, Quota


@admin.register(Profile)
class ProfileAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "cpus", "memory_gb", "gpus", "gpu_share", "is_active", "order")
    list_editable = ("is_active", "order")
    filter_horizontal = ("collaborations",)


@admin.register(Quota)
class QuotaAdmin(admin.ModelAdmin):
    list_display = ("__str__", "user", "collaboration", "max_servers", "max_gpus")
    raw_id_fields = ("user",)


@admin.register(Grant)
class GrantAdmin(admin.ModelAdmin):
    list_display = ("user", "server", "profile", "gpus", "created_at", "ended_at", "end_reason")
    list_filter = ("profile", ("ended_at", admin.EmptyFieldListFilter))
    readonly_fields = [f.name for f in Grant._meta.fields]
