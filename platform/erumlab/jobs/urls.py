from django.urls import path

from erumlab.jobs import views

app_name = "jobs"

urlpatterns = [
    path("", views.job_list, name="list"),
    path("templates/", views.template_list, name="templates"),
    path("new/<int:template_id>/", views.job_submit, name="submit"),
    path("queues/", views.queues, name="queues"),
    path("<uuid:job_id>/", views.job_detail, name="detail"),
    path("<uuid:job_id>/live/", views.job_live, name="live"),
    path("<uuid:job_id>/cancel/", views.job_cancel, name="cancel"),
    path("<uuid:job_id>/requeue/", views.job_requeue, name="requeue"),
    path("<uuid:job_id>/clone/", views.job_clone, name="clone"),
    path("<uuid:job_id>/output.html", views.job_output_html, name="output_html"),
    path("<uuid:job_id>/output.ipynb", views.job_output_notebook, name="output_notebook"),
    path("<uuid:job_id>/figures/<int:index>.png", views.job_figure, name="figure"),
    path("<uuid:job_id>/artifacts/<uuid:artifact_id>/", views.artifact_download,
         name="artifact"),
]
