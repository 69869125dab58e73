from django.contrib import admin

from erumlab.courses.models import (
    Course,
    Extension,
    Invitation,
    Lecture,
    Member,
    Offering,
    Release,
    ScoreOverride,
    Submission,
)


@admin.register(Course)
class CourseAdmin(admin.ModelAdmin):
    list_display = ("title", "slug", "installed_at")


@admin.register(Lecture)
class LectureAdmin(admin.ModelAdmin):
    list_display = ("course", "number", "title", "max_points", "is_active")
    list_filter = ("course",)
    exclude = ("exercise_source", "exercise_student", "notebooks", "files")


class MemberInline(admin.TabularInline):
    model = Member
    extra = 0
    autocomplete_fields = ("user",)


@admin.register(Offering)
class OfferingAdmin(admin.ModelAdmin):
    list_display = ("course", "term", "enrolment_code", "enrolment_open", "created_at")
    inlines = [MemberInline]


@admin.register(Release)
class ReleaseAdmin(admin.ModelAdmin):
    list_display = ("offering", "lecture", "opens_at", "due_at")
    exclude = ("exercise_source", "exercise_student", "notebooks", "files")


@admin.register(Submission)
class SubmissionAdmin(admin.ModelAdmin):
    list_display = ("student", "release", "attempt", "state", "score", "late", "submitted_at")
    list_filter = ("state", "late")
    readonly_fields = [f.name for f in Submission._meta.fields]


admin.site.register([Invitation, Extension, ScoreOverride])
