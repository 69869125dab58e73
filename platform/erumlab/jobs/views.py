from __future__ import annotations

import base64
import json

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_POST

from erumlab.accounts.selectors import collaborations_of
from erumlab.core.downloads import rendered_notebook_response
from erumlab.core.errors import add_to_form
from erumlab.jobs import selectors, services
from erumlab.jobs.downloads import artifact_response, output_notebook_response
from erumlab.jobs.forms import JobFilterForm, JobForm, TemplateFromServerForm, TemplateUploadForm
from erumlab.jobs.models import Job
from erumlab.jobs.parameters import ParameterError


def _job_or_404(request: HttpRequest, job_id) -> Job:  # noqa: ANN001
    return get_object_or_404(selectors.jobs_visible_to(request.user), pk=job_id)


@login_required
def job_list(request: HttpRequest) -> HttpResponse:
    templates = selectors.templates_visible_to(request.user)
    filters = JobFilterForm(request.GET or None, templates=templates)
    jobs = selectors.jobs_visible_to(request.user)
    if filters.is_valid():
        jobs = selectors.jobs_filtered(jobs, user=request.user, **filters.cleaned_data)
    page = Paginator(jobs, 25).get_page(request.GET.get("page"))
    # the pager's links keep the chosen filters (includes/pages.html)
    active = {name: request.GET[name] for name in filters.fields if request.GET.get(name)}
    return render(request, "jobs/job_list.html", {"page": page, "filters": filters,
                                                  "active": active})


@login_required
def template_list(request: HttpRequest) -> HttpResponse:
    from erumlab.sessions.hub import HubUnavailable

    from_server = request.POST.get("source") == "server"
    form = TemplateUploadForm(None if from_server else (request.POST or None),
                              request.FILES or None)
    server_form = TemplateFromServerForm(request.POST if from_server else None)
    if from_server and server_form.is_valid():
        try:
            template = services.template_import_from_server(
                owner=request.user, path=server_form.cleaned_data["path"])
        except ValidationError as error:
            for problems in error.message_dict.values():
                server_form.add_error("path", problems)
        except HubUnavailable as error:
            server_form.add_error("path", str(error))
        else:
            messages.success(request, f"Template '{template.title}' is ready.")
            return redirect("jobs:submit", template_id=template.pk)
    elif request.method == "POST" and not from_server and form.is_valid():
        upload = form.cleaned_data["notebook"]
        try:
            template = services.template_upload(owner=request.user, filename=upload.name,
                                                content=upload.read())
        except ValidationError as error:
            for problem in error.message_dict.get("notebook", error.messages):
                form.add_error("notebook", problem)
        else:
            messages.success(request, f"Template '{template.title}' is ready.")
            return redirect("jobs:submit", template_id=template.pk)
    templates = selectors.templates_visible_to(request.user)
    return render(request, "jobs/template_list.html",
                  {"templates": templates, "form": form, "server_form": server_form})


@login_required
def job_submit(request: HttpRequest, template_id: int) -> HttpResponse:
    template = get_object_or_404(selectors.templates_visible_to(request.user), pk=template_id)
    source = None
    if request.GET.get("clone"):
        source = _job_or_404(request, request.GET["clone"])
    # Links may pre-fill declared parameters (e.g. "Fine-tune in a job": ?base_model=...).
    prefill = {p["name"]: request.GET[p["name"]] for p in template.parameters
               if p["name"] in request.GET}
    form = JobForm(
        request.POST or None, template=template, collaborations=collaborations_of(request.user),
        initial_values=source.parameters if source else prefill,
    )
    if request.method == "POST" and form.is_valid():
        try:
            job = services.job_submit(
                owner=request.user, template=template, parameters=form.parameter_values(),
                queue=form.cleaned_data["queue"],
                wall_time_limit=form.cleaned_data.get("wall_time_limit"),
                collaboration=form.cleaned_data.get("collaboration"), from_form=True,
                cloned_from=source,
            )
        except ParameterError as error:
            form.add_parameter_errors(error.errors)
        except ValidationError as error:
            add_to_form(form, error)
        else:
            messages.success(request, "Job submitted.")
            return redirect("jobs:detail", job_id=job.pk)
    return render(request, "jobs/job_submit.html",
                  {"template": template, "form": form, "source": source})


@login_required
def job_detail(request: HttpRequest, job_id) -> HttpResponse:  # noqa: ANN001
    job = _job_or_404(request, job_id)
    context = {
        "job": job,
        "can_manage": selectors.jobs_manageable_by(request.user).filter(pk=job.pk).exists(),
        "artifacts": job.artifacts.all(),
        "figures": range(len(_figures(job))) if job.is_terminal else [],
    }
    return render(request, "jobs/job_detail.html", context)


@login_required
def job_live(request: HttpRequest, job_id) -> HttpResponse:  # noqa: ANN001
    """Progress, state and log alone: the job page polls this while the job runs."""
    job = _job_or_404(request, job_id)
    response = render(request, "jobs/_live.html", {"job": job})
    if job.is_terminal and request.headers.get("HX-Request"):
        response["HX-Refresh"] = "true"  # show outputs and artifacts now that they exist
    return response


@login_required
@require_POST
def job_cancel(request: HttpRequest, job_id) -> HttpResponse:  # noqa: ANN001
    job = _job_or_404(request, job_id)
    try:
        services.job_cancel(job=job, actor=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, "Cancellation requested.")
    return redirect("jobs:detail", job_id=job.pk)


@login_required
@require_POST
def job_requeue(request: HttpRequest, job_id) -> HttpResponse:  # noqa: ANN001
    job = _job_or_404(request, job_id)
    try:
        services.job_requeue(job=job, actor=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, "Job requeued.")
    return redirect("jobs:queues")


@login_required
def job_clone(request: HttpRequest, job_id) -> HttpResponse:  # noqa: ANN001
    job = _job_or_404(request, job_id)
    if job.template is None or not job.template.is_active:
        messages.error(request, "The template of this job no longer exists.")
        return redirect("jobs:detail", job_id=job.pk)
    return redirect(f"{_submit_url(job.template.pk)}?clone={job.pk}")


def _submit_url(template_id: int) -> str:
    from django.urls import reverse

    return reverse("jobs:submit", kwargs={"template_id": template_id})


@login_required
@xframe_options_sameorigin
def job_output_html(request: HttpRequest, job_id) -> HttpResponse:  # noqa: ANN001
    job = _job_or_404(request, job_id)
    if not job.output_html:
        raise Http404("This job has no rendered output.")
    return rendered_notebook_response(job.output_html)


@login_required
def job_output_notebook(request: HttpRequest, job_id) -> FileResponse:  # noqa: ANN001
    return output_notebook_response(_job_or_404(request, job_id))


@login_required
def artifact_download(request: HttpRequest, job_id, artifact_id) -> FileResponse:  # noqa: ANN001
    job = _job_or_404(request, job_id)
    return artifact_response(get_object_or_404(job.artifacts, pk=artifact_id))


def _figures(job: Job) -> list[bytes]:
    if not job.output_notebook:
        return []
    try:
        with default_storage.open(job.output_notebook) as handle:
            notebook = json.load(handle)
    except (OSError, ValueError):
        return []
    figures = []
    for cell in notebook.get("cells", []):
        for output in cell.get("outputs", []):
            data = output.get("data", {}).get("image/png")
            if data:
                figures.append(base64.b64decode("".join(data) if isinstance(data, list) else data))
    return figures


@login_required
def job_figure(request: HttpRequest, job_id, index: int) -> HttpResponse:  # noqa: ANN001
    figures = _figures(_job_or_404(request, job_id))
    if index >= len(figures):
        raise Http404("No such figure.")
    return HttpResponse(figures[index], content_type="image/png")


@staff_member_required
def queues(request: HttpRequest) -> HttpResponse:
    """Administrators: waiting and running jobs per queue and per worker."""
    from django.db.models import Count

    counts = (Job.objects.filter(state__in=[Job.State.QUEUED, Job.State.RUNNING])
              .values("queue", "state").annotate(n=Count("pk")).order_by("queue", "state"))
    table: dict[str, dict[str, int]] = {q: {"queued": 0, "running": 0} for q in services.QUEUES}
    for row in counts:
        table.setdefault(row["queue"], {"queued": 0, "running": 0})[row["state"]] = row["n"]
    active = Job.objects.filter(state__in=[Job.State.QUEUED, Job.State.RUNNING]).select_related(
        "owner").order_by("state", "created_at")[:200]
    by_worker: dict[str, int] = {}
    for job in active:
        if job.state == Job.State.RUNNING:
            by_worker[job.worker or "?"] = by_worker.get(job.worker or "?", 0) + 1
    return render(request, "jobs/queues.html",
                  {"table": table, "active": active, "by_worker": sorted(by_worker.items())})
