from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_POST

from erumlab.accounts.models import User
from erumlab.core.downloads import rendered_notebook_response
from erumlab.core.errors import add_to_form
from erumlab.courses import selectors, services
from erumlab.courses.forms import (
    ExtensionForm,
    InviteForm,
    JoinForm,
    MemberForm,
    OfferingForm,
    OverrideForm,
    ReleaseForm,
    UploadForm,
)
from erumlab.courses.models import Invitation, Offering, Release, Role, Submission


def _offering_or_404(request: HttpRequest, offering_id: int) -> tuple[Offering, str]:
    offering = get_object_or_404(Offering.objects.select_related("course"), pk=offering_id)
    role = selectors.role_in(offering, request.user)
    if role is None:
        raise Http404("No such course offering.")  # do not reveal offerings to outsiders
    return offering, role


def _release_or_404(request: HttpRequest, release_id: int) -> tuple[Release, str]:
    release = get_object_or_404(Release.objects.select_related("lecture", "offering__course"),
                                pk=release_id)
    role = selectors.role_in(release.offering, request.user)
    if role is None or not selectors.releases_visible_to(
            release.offering, request.user).filter(pk=release.pk).exists():
        raise Http404("No such lecture.")
    return release, role


@login_required
def my_courses(request: HttpRequest) -> HttpResponse:
    join = JoinForm(request.POST if request.POST.get("form") == "join" else None)
    create = OfferingForm(request.POST if request.POST.get("form") == "offering" else None)
    if join.is_bound and join.is_valid():
        try:
            member = services.enrol_with_code(user=request.user, code=join.cleaned_data["code"])
        except ValidationError as error:
            add_to_form(join, error)
        else:
            messages.success(request, f"You joined {member.offering}.")
            return redirect("courses:offering", member.offering.pk)
    if create.is_bound and create.is_valid():
        try:
            offering = services.offering_create(course=create.cleaned_data["course"],
                                                term=create.cleaned_data["term"],
                                                actor=request.user)
        except ValidationError as error:
            add_to_form(create, error)
        except PermissionDenied as denied:
            create.add_error(None, str(denied))
        else:
            messages.success(request, f"Created {offering}. Students join with the code "
                                      f"{offering.enrolment_code}.")
            return redirect("courses:offering", offering.pk)
    memberships = (request.user.course_memberships.select_related("offering__course")
                   .order_by("-offering__created_at"))
    return render(request, "courses/my_courses.html", {
        "memberships": memberships, "join_form": join, "offering_form": create,
        "can_create": selectors.can_create_offerings(request.user),
    })


@login_required
def join_link(request: HttpRequest, code: str) -> HttpResponse:
    """The enrolment link an instructor shares: the code in the URL, one click to join."""
    offering = Offering.objects.select_related("course").filter(
        enrolment_code=code.strip().upper()).first()
    if offering is None:
        raise Http404("No course has this enrolment link.")
    if request.method == "POST":
        try:
            member = services.enrol_with_code(user=request.user, code=code)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
            return redirect("courses:mine")
        messages.success(request, f"You joined {member.offering}.")
        return redirect("courses:offering", member.offering.pk)
    return render(request, "courses/join.html", {"offering": offering})


@login_required
def invitation(request: HttpRequest, token: str) -> HttpResponse:
    if request.method == "POST":
        try:
            member = services.invitation_accept(token=token, user=request.user)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
            return redirect("courses:mine")
        messages.success(request, f"You joined {member.offering} as {member.get_role_display()}.")
        return redirect("courses:offering", member.offering.pk)
    found = Invitation.objects.select_related("offering__course").filter(
        token=token).first()
    if found is None:
        raise Http404("This invitation link is not valid.")
    return render(request, "courses/invitation.html", {"invitation": found})


def _student_rows(offering: Offering, user: User) -> list[dict]:
    releases = selectors.releases_visible_to(offering, user)
    rows = []
    for release in releases:
        submissions = list(release.submissions.filter(student=user).order_by("-attempt")
                           .prefetch_related("overrides"))
        rows.append({"release": release, "due": services.due_for(release, user),
                     "latest": submissions[0] if submissions else None,
                     "attempts": len(submissions)})
    return rows


@login_required
def offering_detail(request: HttpRequest, offering_id: int) -> HttpResponse:
    offering, role = _offering_or_404(request, offering_id)
    context = {"offering": offering, "role": role, "now": timezone.now(),
               "teaching": role in selectors.TEACHING, "instructing": role == Role.INSTRUCTOR}
    if role == Role.STUDENT:
        context["rows"] = _student_rows(offering, request.user)
    else:
        released = offering.releases.values_list("lecture_id", flat=True)
        lectures = offering.course.lectures.filter(is_active=True).exclude(pk__in=released)
        context.update(
            releases=offering.releases.select_related("lecture").order_by("lecture__number"),
            release_form=ReleaseForm(lectures=lectures),
            member_form=MemberForm(), invite_form=InviteForm(),
            members=offering.members.select_related("user"),
            invitations=offering.invitations.filter(accepted_at__isnull=True),
        )
    return render(request, "courses/offering.html", context)


@login_required
@require_POST
def release_create(request: HttpRequest, offering_id: int) -> HttpResponse:
    offering, _ = _offering_or_404(request, offering_id)
    form = ReleaseForm(request.POST, lectures=offering.course.lectures.filter(is_active=True))
    if form.is_valid():
        try:
            release = services.release_lecture(
                offering=offering, lecture=form.cleaned_data["lecture"], actor=request.user,
                due_at=form.cleaned_data["due_at"], opens_at=form.cleaned_data["opens_at"])
        except (ValidationError, PermissionDenied) as error:
            messages.error(request, _text(error))
        else:
            messages.success(request, f"Released lecture {release.lecture.number}, due "
                                      f"{timezone.localtime(release.due_at):%Y-%m-%d %H:%M}.")
    else:
        messages.error(request, _form_text(form))
    return redirect("courses:offering", offering.pk)


@login_required
@require_POST
def members(request: HttpRequest, offering_id: int) -> HttpResponse:
    offering, _ = _offering_or_404(request, offering_id)
    try:
        if request.POST.get("form") == "invite":
            form = InviteForm(request.POST)
            if not form.is_valid():
                messages.error(request, _form_text(form))
                return redirect("courses:offering", offering.pk)
            report = services.invite(
                offering=offering, actor=request.user, emails=form.cleaned_data["emails"],
                role=form.cleaned_data["role"],
                accept_url=lambda token: request.build_absolute_uri(
                    reverse("courses:invitation", args=[token])))
            parts = []
            if report.enrolled:
                parts.append(f"enrolled {len(report.enrolled)} with accounts")
            if report.invited:
                parts.append(f"sent {len(report.invited)} invitation(s)")
            if parts:
                messages.success(request, "; ".join(parts).capitalize() + ".")
            if report.invalid:
                messages.error(request, "Not e-mail addresses: " + ", ".join(report.invalid))
        elif request.POST.get("form") == "remove":
            user = get_object_or_404(User, username=request.POST.get("username", ""))
            services.member_remove(offering=offering, actor=request.user, user=user)
            messages.success(request, f"Removed {user.username}; their submissions are kept.")
        else:
            form = MemberForm(request.POST)
            if not form.is_valid():
                messages.error(request, _form_text(form))
                return redirect("courses:offering", offering.pk)
            member = services.member_add(offering=offering, actor=request.user,
                                         username=form.cleaned_data["username"],
                                         role=form.cleaned_data["role"])
            messages.success(request, f"{member.user.username} is now "
                                      f"{member.get_role_display().lower()}.")
    except (ValidationError, PermissionDenied) as error:
        messages.error(request, _text(error))
    return redirect("courses:offering", offering.pk)


@login_required
def gradebook(request: HttpRequest, offering_id: int) -> HttpResponse:
    offering, _ = _offering_or_404(request, offering_id)
    book = services.gradebook(offering=offering, actor=request.user)
    return render(request, "courses/gradebook.html", {
        "offering": offering, "book": book,
        "max_total": sum(release.max_points for release in book.releases)})


@login_required
def grades_csv(request: HttpRequest, offering_id: int) -> HttpResponse:
    offering, _ = _offering_or_404(request, offering_id)
    text = services.grades_csv(offering=offering, actor=request.user)
    response = HttpResponse(text, content_type="text/csv; charset=utf-8")
    name = f"grades-{offering.course.slug}-{offering.pk}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@login_required
def release_detail(request: HttpRequest, release_id: int) -> HttpResponse:
    release, role = _release_or_404(request, release_id)
    teaching = role in selectors.TEACHING
    context = {"release": release, "offering": release.offering, "role": role,
               "teaching": teaching, "instructing": role == Role.INSTRUCTOR,
               "folder": services.workspace_folder(release)}
    if teaching:
        context.update(
            submissions=release.submissions.select_related("student")
            .prefetch_related("overrides").order_by("student__username", "-attempt"),
            extensions=release.extensions.select_related("student"),
            extension_form=ExtensionForm())
    else:
        context.update(
            submissions=release.submissions.filter(student=request.user)
            .prefetch_related("overrides").order_by("-attempt"),
            due=services.due_for(release, request.user), upload_form=UploadForm())
    return render(request, "courses/release.html", context)


def lab_url(user: User, path: str) -> str:
    from urllib.parse import quote

    return f"{settings.ERUMLAB_HUB_URL}/user/{quote(user.username)}/lab/tree/{quote(path)}"


@login_required
def release_open(request: HttpRequest, release_id: int) -> HttpResponse:
    """Copy the student version into the user's server and open it in JupyterLab.

    Starts the server first when it is not running (then comes back here).
    Idempotent: files already there are the user's work and stay as they are.
    """
    from erumlab.sessions.hub import HubClient, HubUnavailable
    from erumlab.sessions.views import start_for

    release, _ = _release_or_404(request, release_id)
    try:
        status = HubClient.from_settings().server_status(request.user.username)
    except HubUnavailable as exc:
        messages.error(request, str(exc))
        return redirect("courses:release", release.pk)
    if not status.running:
        if status.state == "starting":
            request.session["sessions_after_start"] = request.path
            return redirect("sessions:notebooks")
        return redirect(start_for(request, then=request.path))
    try:
        path = services.lecture_open(release=release, user=request.user)
    except HubUnavailable as exc:
        messages.error(request, str(exc))
        return redirect("courses:release", release.pk)
    return redirect(lab_url(request.user, path))


@login_required
@require_POST
def submit(request: HttpRequest, release_id: int) -> HttpResponse:
    from erumlab.sessions.hub import HubUnavailable

    release, _ = _release_or_404(request, release_id)
    try:
        if request.FILES.get("notebook"):
            form = UploadForm(request.POST, request.FILES)
            if not form.is_valid():
                raise ValidationError(_form_text(form))
            upload = form.cleaned_data["notebook"]
            if upload.size > 20_000_000:
                raise ValidationError("The notebook is larger than 20 MB.")
            submission = services.submission_create(
                release=release, student=request.user, content=upload.read(),
                source=Submission.Source.UPLOAD)
        else:
            submission = services.submission_from_server(release=release, student=request.user)
    except (ValidationError, PermissionDenied, HubUnavailable) as error:
        messages.error(request, _text(error))
        return redirect("courses:release", release.pk)
    note = " It is late; it is kept and marked late." if submission.late else ""
    messages.success(request, f"Submitted attempt {submission.attempt}; the grader runs it "
                              f"now.{note}")
    return redirect("courses:submission", submission.pk)


@login_required
@require_POST
def extend(request: HttpRequest, release_id: int) -> HttpResponse:
    release, _ = _release_or_404(request, release_id)
    form = ExtensionForm(request.POST)
    if not form.is_valid():
        messages.error(request, _form_text(form))
        return redirect("courses:release", release.pk)
    student = User.objects.filter(username=form.cleaned_data["student"].strip()).first()
    try:
        if student is None:
            raise ValidationError(f"No user named {form.cleaned_data['student'].strip()!r}.")
        extension = services.extension_grant(
            release=release, student=student, due_at=form.cleaned_data["due_at"],
            actor=request.user, reason=form.cleaned_data["reason"])
    except (ValidationError, PermissionDenied) as error:
        messages.error(request, _text(error))
    else:
        messages.success(request, f"{student.username} may submit until "
                                  f"{timezone.localtime(extension.due_at):%Y-%m-%d %H:%M}.")
    return redirect("courses:release", release.pk)


def _submission_or_404(request: HttpRequest, submission_id) -> Submission:  # noqa: ANN001
    return get_object_or_404(selectors.submissions_visible_to(request.user), pk=submission_id)


@login_required
def submission_detail(request: HttpRequest, submission_id) -> HttpResponse:  # noqa: ANN001
    submission = _submission_or_404(request, submission_id)
    teaching = selectors.can_teach(submission.release.offering, request.user)
    return render(request, "courses/submission.html", {
        "submission": submission, "release": submission.release, "teaching": teaching,
        "overrides": submission.overrides.select_related("author"),
        "override": submission.current_override(),
        "override_form": OverrideForm(initial={"score": submission.effective_score}),
        "pending": submission.state in (Submission.State.QUEUED, Submission.State.GRADING),
    })


@login_required
def submission_status(request: HttpRequest, submission_id) -> HttpResponse:  # noqa: ANN001
    """The result card alone, polled by htmx while the grader runs."""
    submission = _submission_or_404(request, submission_id)
    return render(request, "courses/_result.html", {
        "submission": submission, "override": submission.current_override(),
        "pending": submission.state in (Submission.State.QUEUED, Submission.State.GRADING)})


@login_required
@xframe_options_sameorigin
def submission_html(request: HttpRequest, submission_id) -> HttpResponse:  # noqa: ANN001
    submission = _submission_or_404(request, submission_id)
    # The graded notebook holds the hidden tests: teachers only.
    if not selectors.can_teach(submission.release.offering, request.user):
        raise Http404("Only the offering's teachers see the graded notebook.")
    if not submission.graded_html:
        raise Http404("This submission has not been graded yet.")
    return rendered_notebook_response(submission.graded_html)


@login_required
@require_POST
def override(request: HttpRequest, submission_id) -> HttpResponse:  # noqa: ANN001
    submission = _submission_or_404(request, submission_id)
    form = OverrideForm(request.POST)
    if not form.is_valid():
        messages.error(request, _form_text(form))
        return redirect("courses:submission", submission.pk)
    try:
        services.score_override(submission=submission, actor=request.user,
                                score=form.cleaned_data["score"],
                                reason=form.cleaned_data["reason"])
    except (ValidationError, PermissionDenied) as error:
        messages.error(request, _text(error))
    else:
        messages.success(request, "Score changed.")
    return redirect("courses:submission", submission.pk)


@login_required
@require_POST
def regrade(request: HttpRequest, submission_id) -> HttpResponse:  # noqa: ANN001
    submission = _submission_or_404(request, submission_id)
    try:
        services.submission_regrade(submission=submission, actor=request.user)
    except (ValidationError, PermissionDenied) as error:
        messages.error(request, _text(error))
    else:
        messages.success(request, "Grading again.")
    return redirect("courses:submission", submission.pk)


def _text(error: Exception) -> str:
    if isinstance(error, ValidationError):
        return " ".join(error.messages)
    return str(error)


def _form_text(form) -> str:  # noqa: ANN001
    return "; ".join(f"{'' if field == '__all__' else field + ': '}{' '.join(errors)}"
                     for field, errors in form.errors.items())
