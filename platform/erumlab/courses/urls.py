from django.urls import path

from erumlab.courses import views

app_name = "courses"

urlpatterns = [
    path("", views.my_courses, name="mine"),
    path("invitations/<str:token>/", views.invitation, name="invitation"),
    path("join/<str:code>/", views.join_link, name="join"),
    path("<int:offering_id>/", views.offering_detail, name="offering"),
    path("<int:offering_id>/release/", views.release_create, name="release_create"),
    path("<int:offering_id>/members/", views.members, name="members"),
    path("<int:offering_id>/gradebook/", views.gradebook, name="gradebook"),
    path("<int:offering_id>/grades.csv", views.grades_csv, name="grades_csv"),
    path("lectures/<int:release_id>/", views.release_detail, name="release"),
    path("lectures/<int:release_id>/open/", views.release_open, name="open"),
    path("lectures/<int:release_id>/submit/", views.submit, name="submit"),
    path("lectures/<int:release_id>/extend/", views.extend, name="extend"),
    path("submissions/<uuid:submission_id>/", views.submission_detail, name="submission"),
    path("submissions/<uuid:submission_id>/status/", views.submission_status,
         name="submission_status"),
    path("submissions/<uuid:submission_id>/graded.html", views.submission_html,
         name="submission_html"),
    path("submissions/<uuid:submission_id>/override/", views.override, name="override"),
    path("submissions/<uuid:submission_id>/regrade/", views.regrade, name="regrade"),
]
