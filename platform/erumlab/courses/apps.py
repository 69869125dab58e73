from django.apps import AppConfig


class CoursesConfig(AppConfig):
    name = "erumlab.courses"
    label = "courses"
    verbose_name = "Courses"
