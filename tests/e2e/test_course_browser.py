"""In the browser: an instructor offers the course and releases a lecture; a student joins
with the code, opens the lecture (their server starts and JupyterLab shows the exercise),
submits from the portal and sees the grade; the instructor sees it in the gradebook."""

from __future__ import annotations

import os
import re
from pathlib import Path

import nbformat
import pytest
from django.contrib.auth.models import Permission
from playwright.sync_api import Browser, Page, expect

from erumlab.courses import services
from erumlab.courses.check import solved
from erumlab.courses.models import Release
from erumlab.sessions.hub import HubClient
from tests.factories import UserFactory

TINY = Path(__file__).parent.parent / "courses" / "tiny-course"
pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("session_profiles")]


def _log_in(page: Page, url: str, username: str, password: str) -> None:
    page.goto(f"{url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/dashboard/$"))


def _shot(page: Page, name: str) -> None:
    if os.environ.get("ERUMLAB_SCREENSHOTS"):
        page.screenshot(path=os.path.join(os.environ["ERUMLAB_SCREENSHOTS"], f"{name}.png"),
                        full_page=True)


def test_instructor_releases_student_opens_and_submits_instructor_sees_the_grade(
        live_server, test_hub, start_worker, password, page: Page, browser: Browser):
    services.course_install(folder=TINY)
    instructor = UserFactory(username="prof")
    instructor.user_permissions.add(Permission.objects.get(codename="create_offering"))
    student = UserFactory(username="lise")
    start_worker()
    page.set_default_timeout(30_000)

    # The instructor offers the course and releases lecture 1.
    _log_in(page, live_server.url, "prof", password)
    page.get_by_role("link", name="Courses", exact=True).click()
    form = page.locator("#offering-form")
    form.get_by_label("Course").select_option(label="Tiny course")
    form.get_by_label("Term").fill("Winter 2026/27")
    form.get_by_role("button", name="Create offering").click()
    code = page.locator("#enrolment-code").inner_text()
    release_form = page.locator("#release-form")
    release_form.get_by_label("Lecture").select_option(label="1. Squares")
    release_form.get_by_label("Due at").fill("2099-12-31T23:59")
    release_form.get_by_role("button", name="Release").click()
    expect(page.locator(".messages")).to_contain_text("Released lecture 1")
    expect(page.locator("#releases")).to_contain_text("1. Squares")
    _shot(page, "course-instructor")

    with test_hub.run():
        # The student joins with the code and opens the lecture in JupyterLab.
        context = browser.new_context()
        learner = context.new_page()
        learner.set_default_timeout(30_000)
        _log_in(learner, live_server.url, "lise", password)
        learner.goto(f"{live_server.url}/courses/")
        learner.locator("#join-form").get_by_label("Enrolment code").fill(code)
        learner.locator("#join-form").get_by_role("button", name="Join").click()
        expect(learner.locator("#student-lectures")).to_contain_text("1. Squares")
        _shot(learner, "course-student")
        seen = []
        learner.on("response", lambda r: seen.append((r.status, r.url[:120]))
                   if r.request.resource_type == "document" else None)
        learner.get_by_role("link", name="Open in JupyterLab").click()
        # Her server starts (progress on the Notebooks page), then JupyterLab opens the exercise.
        expect(learner).to_have_url(re.compile(r"/user/lise/lab"), timeout=120_000)
        try:
            expect(learner.locator(".jp-Notebook").first).to_contain_text("A tiny exercise",
                                                                           timeout=60_000)
        except AssertionError as error:
            chain = "\n".join(map(str, seen))
            raise AssertionError(f"{error}\nthe browser went through:\n{chain}") from None
        expect(learner.get_by_role("tab", name=re.compile("exercise.ipynb"))).to_be_visible()
        _shot(learner, "course-jupyterlab")

        # She answers (saved in her server, as JupyterLab would) and submits from the portal.
        release = Release.objects.get()
        answered = solved(nbformat.reads(release.exercise_source, as_version=4),
                          nbformat.reads(services.student_files(release)["exercise.ipynb"],
                                         as_version=4))
        HubClient.from_settings().put_file(
            user="lise", path=f"{services.workspace_folder(release)}/exercise.ipynb",
            text=nbformat.writes(answered), server_url=test_hub.url)
        learner.goto(f"{live_server.url}/courses/lectures/{release.pk}/")
        learner.get_by_role("button", name="Submit from my notebook server").click()
        expect(learner.locator("#score")).to_contain_text("5 of 5 points", timeout=120_000)
        expect(learner.locator("#test-results")).to_contain_text("passed")
        _shot(learner, "course-result")
        context.close()

    # The instructor sees the grade in the gradebook.
    page.get_by_role("link", name="Gradebook").click()
    expect(page.locator("#gradebook")).to_contain_text("lise")
    expect(page.locator("#gradebook")).to_contain_text("5 / 5")
    _shot(page, "course-gradebook")
    assert student.course_submissions.get().score == 5
