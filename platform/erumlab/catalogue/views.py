from __future__ import annotations

import json

import markdown
import nh3
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_POST

from erumlab.accounts.selectors import collaborations_of
from erumlab.catalogue import metadata, selectors, services
from erumlab.catalogue.forms import DatasetForm, SearchForm, VersionForm
from erumlab.catalogue.models import Dataset, DatasetFile, DatasetVersion
from erumlab.core.downloads import file_response
from erumlab.core.errors import add_to_form
from erumlab.core.search import chosen_filters

ALLOWED_TAGS = {"p", "br", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "strong", "em",
                "code", "pre", "blockquote", "a", "table", "thead", "tbody", "tr", "th", "td",
                "hr", "sup", "sub"}


FACET_LABELS = {"experiment": "Experiment", "data_level": "Data level", "format": "Format",
                "licence": "Licence", "keyword": "Keyword", "collaboration": "Collaboration"}


def render_markdown(text: str) -> SafeString:
    """Markdown to HTML, then sanitized (nh3): no scripts, styles, event handlers or images."""
    html = markdown.markdown(text, extensions=["tables", "fenced_code"])
    clean = nh3.clean(html, tags=ALLOWED_TAGS, attributes={"a": {"href", "title"}},
                      url_schemes={"http", "https", "mailto"}, link_rel="nofollow noopener")
    return mark_safe(clean)  # noqa: S308  # safe: sanitized by nh3 (allow-list)


def _dataset_or_404(request: HttpRequest, slug: str) -> Dataset:
    return get_object_or_404(selectors.datasets_visible_to(request.user), slug=slug)


def _version_or_404(request: HttpRequest, dataset: Dataset, number: int) -> DatasetVersion:
    return get_object_or_404(selectors.versions_visible_to(request.user, dataset), number=number)


def _file_or_404(request: HttpRequest, slug: str, number: int, file_id) -> DatasetFile:  # noqa: ANN001
    return get_object_or_404(selectors.files_visible_to(request.user),
                             version__dataset__slug=slug, version__number=number, pk=file_id)


def dataset_list(request: HttpRequest) -> HttpResponse:
    form = SearchForm(request.GET or None)
    datasets = selectors.datasets_visible_to(request.user)
    filters, active = chosen_filters(form)  # an invalid facet value is shown, not applied
    datasets = selectors.datasets_filtered(datasets, filters)
    datasets = selectors.datasets_search(datasets, filters.get("q", ""))
    page = Paginator(datasets, 20).get_page(request.GET.get("page"))
    return render(request, "catalogue/dataset_list.html", {
        "form": form, "page": page, "facets": selectors.facet_counts(datasets),
        "facet_labels": FACET_LABELS, "active": active, "query": filters.get("q", ""),
    })


@login_required
def dataset_create(request: HttpRequest) -> HttpResponse:
    form = DatasetForm(request.POST or None, collaborations=collaborations_of(request.user))
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            dataset = services.dataset_create(
                owner=request.user, title=data["title"], slug=data.get("slug") or "",
                description=data.get("description", ""), visibility=data["visibility"],
                collaboration=data.get("collaboration"), experiment=data.get("experiment", ""),
                data_level=data["data_level"], licence=data["licence"], keywords=form.keywords())
        except ValidationError as error:
            add_to_form(form, error)
        else:
            messages.success(request, "Dataset created: add files to its first version.")
            return redirect("catalogue:version_edit", slug=dataset.slug, number=1)
    return render(request, "catalogue/dataset_form.html", {"form": form})


def dataset_detail(request: HttpRequest, slug: str, number: int | None = None) -> HttpResponse:
    dataset = _dataset_or_404(request, slug)
    versions = selectors.versions_visible_to(request.user, dataset).order_by("-number")
    version = (_version_or_404(request, dataset, number) if number
               else selectors.latest_version(request.user, dataset))
    if version is None:
        raise Http404("No version of this dataset is visible to you.")
    context = {
        "dataset": dataset,
        "version": version,
        "versions": versions,
        "files": version.files.all(),
        "description_html": render_markdown(dataset.description),
        "can_edit": services.can_edit(request.user, dataset),
        "derived_from": version.derived_from.filter(
            dataset__in=selectors.datasets_visible_to(request.user)),
    }
    if version.is_published:
        context["citation"] = metadata.citation_text(version)
        context["bibtex"] = metadata.bibtex(version)
        context["jsonld"] = metadata.schema_org(version)
    return render(request, "catalogue/dataset_detail.html", context)


def datacite_json(request: HttpRequest, slug: str, number: int) -> JsonResponse:
    version = _version_or_404(request, _dataset_or_404(request, slug), number)
    if not version.is_published:
        raise Http404("Drafts have no DataCite record.")
    return JsonResponse({"data": {"type": "dois", "attributes": metadata.datacite(version)}},
                        json_dumps_params={"indent": 2})


def bibtex_file(request: HttpRequest, slug: str, number: int) -> HttpResponse:
    version = _version_or_404(request, _dataset_or_404(request, slug), number)
    if not version.is_published:
        raise Http404("Drafts cannot be cited.")
    response = HttpResponse(metadata.bibtex(version), content_type="application/x-bibtex")
    response["Content-Disposition"] = f'attachment; filename="{slug}-v{number}.bib"'
    return response


def resolve_identifier(request: HttpRequest, identifier: str) -> HttpResponse:
    version = get_object_or_404(DatasetVersion.objects.filter(
        dataset__in=selectors.datasets_visible_to(request.user),
        state=DatasetVersion.State.PUBLISHED), identifier=identifier)
    return redirect("catalogue:version", slug=version.dataset.slug, number=version.number)


@login_required
def version_edit(request: HttpRequest, slug: str, number: int) -> HttpResponse:
    dataset = _dataset_or_404(request, slug)
    version = _version_or_404(request, dataset, number)
    if not services.can_edit(request.user, dataset):
        raise PermissionDenied("Only the owner or the collaboration's maintainers can edit.")
    if version.is_published:
        messages.info(request, f"Version {number} is published and cannot change.")
        return redirect("catalogue:version", slug=slug, number=number)
    form = VersionForm(request.POST or None, initial={
        "changelog": version.changelog,
        "creators": VersionForm.creators_text(version.creators)})
    if request.method == "POST" and form.is_valid():
        try:
            services.version_update(version=version, actor=request.user,
                                    changelog=form.cleaned_data["changelog"],
                                    creators=form.creators_list())
        except ValidationError as error:
            add_to_form(form, error)
        else:
            messages.success(request, "Saved.")
            return redirect("catalogue:version_edit", slug=slug, number=number)
    return render(request, "catalogue/version_edit.html", {
        "dataset": dataset, "version": version, "form": form, "files": version.files.all(),
        "uploads": version.uploads.filter(user=request.user),
        "chunk_bytes": settings.ERUMLAB_UPLOAD_CHUNK_BYTES,
        "pid_preview": services.identifier_for(version),
    })


@login_required
@require_POST
def version_publish(request: HttpRequest, slug: str, number: int) -> HttpResponse:
    dataset = _dataset_or_404(request, slug)
    version = _version_or_404(request, dataset, number)
    try:
        version = services.version_publish(version=version, actor=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect("catalogue:version_edit", slug=slug, number=number)
    messages.success(request, f"Version {number} published as {version.identifier}.")
    return redirect("catalogue:version", slug=slug, number=number)


@login_required
@require_POST
def version_new(request: HttpRequest, slug: str) -> HttpResponse:
    dataset = _dataset_or_404(request, slug)
    try:
        draft = services.version_new_draft(dataset=dataset, actor=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect("catalogue:dataset", slug=slug)
    return redirect("catalogue:version_edit", slug=slug, number=draft.number)


@login_required
@require_POST
def file_remove(request: HttpRequest, slug: str, number: int, file_id) -> HttpResponse:  # noqa: ANN001
    record = _file_or_404(request, slug, number, file_id)
    try:
        services.file_remove(file=record, actor=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    return redirect("catalogue:version_edit", slug=slug, number=number)


def file_detail(request: HttpRequest, slug: str, number: int, file_id) -> HttpResponse:  # noqa: ANN001
    record = _file_or_404(request, slug, number, file_id)
    from erumlab.catalogue.previews import numeric_columns

    columns = numeric_columns(record.preview) if record.preview else []
    return render(request, "catalogue/file_detail.html", {
        "file": record, "dataset": record.version.dataset, "version": record.version,
        "columns": columns, "column": request.GET.get("column") or (columns[0] if columns else ""),
        "preview_json": json.dumps(record.preview, indent=1)[:20000] if record.preview else "",
    })


def file_preview_fragment(request: HttpRequest, slug: str, number: int, file_id) -> HttpResponse:  # noqa: ANN001
    """The preview card alone: polled while the worker computes it."""
    record = _file_or_404(request, slug, number, file_id)
    from erumlab.catalogue.previews import numeric_columns

    columns = numeric_columns(record.preview) if record.preview else []
    response = render(request, "catalogue/_preview.html", {
        "file": record, "columns": columns, "column": columns[0] if columns else ""})
    if record.preview_state != DatasetFile.Preview.PENDING and request.headers.get("HX-Request"):
        response["HX-Refresh"] = "true"
    return response


def file_histogram(request: HttpRequest, slug: str, number: int, file_id) -> HttpResponse:  # noqa: ANN001
    record = _file_or_404(request, slug, number, file_id)
    column = request.GET.get("column", "")
    from erumlab.catalogue.previews import PreviewError, histogram, numeric_columns

    if record.preview is None or column not in numeric_columns(record.preview):
        raise Http404("No such numeric column in this file's preview.")
    key = f"catalogue:histogram:{record.sha256}:{column}"
    png = cache.get(key)
    if png is None:
        try:
            with services.local_path(record) as path:
                png = histogram(path, record.format, column)
        except PreviewError as error:
            return HttpResponse(f"cannot draw a histogram: {error}", status=422,
                                content_type="text/plain")
        cache.set(key, png, timeout=7 * 24 * 3600)
    return HttpResponse(png, content_type="image/png",
                        headers={"Cache-Control": "private, max-age=86400"})


def file_download(request: HttpRequest, slug: str, number: int, file_id) -> HttpResponse:  # noqa: ANN001
    return file_response(request, _file_or_404(request, slug, number, file_id))


def file_raw_image(request: HttpRequest, slug: str, number: int, file_id) -> HttpResponse:  # noqa: ANN001
    """Image files shown inline on the preview page (only formats browsers render safely)."""
    record = _file_or_404(request, slug, number, file_id)
    if record.format != "image" or record.media_type not in ("image/png", "image/jpeg",
                                                             "image/gif"):
        raise Http404("Not an image this page shows inline.")
    response = file_response(request, record)
    response["Content-Disposition"] = "inline"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


