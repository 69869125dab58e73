from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from erumlab.accounts.selectors import collaborations_of
from erumlab.catalogue.views import render_markdown
from erumlab.core.downloads import file_response
from erumlab.core.errors import add_to_form
from erumlab.core.search import chosen_filters
from erumlab.zoo import selectors, services
from erumlab.zoo.forms import AliasForm, ModelForm, PublishForm, SearchForm
from erumlab.zoo.models import Conversion, Model, ModelVersion, TryRun

FACET_LABELS = {"task": "Task", "domain": "Physics domain", "framework": "Framework",
                "licence": "Licence", "keyword": "Keyword", "collaboration": "Collaboration"}


def _model_or_404(request: HttpRequest, name: str) -> Model:
    return get_object_or_404(selectors.models_visible_to(request.user), name=name)


def _version_or_404(request: HttpRequest, model: Model, number: int) -> ModelVersion:
    return get_object_or_404(model.versions.prefetch_related("files", "metrics", "aliases"),
                             number=number)


def model_list(request: HttpRequest) -> HttpResponse:
    form = SearchForm(request.GET or None)
    models = selectors.with_latest_number(selectors.models_visible_to(request.user))
    filters, active = chosen_filters(form)  # an invalid facet value is shown, not applied
    models = selectors.models_filtered(models, filters)
    models = selectors.models_search(models, filters.get("q", ""))
    page = Paginator(models, 20).get_page(request.GET.get("page"))
    return render(request, "zoo/model_list.html", {
        "form": form, "page": page, "facets": selectors.facet_counts(models),
        "facet_labels": FACET_LABELS, "active": active, "query": filters.get("q", ""),
    })


@login_required
def model_create(request: HttpRequest) -> HttpResponse:
    form = ModelForm(request.POST or None, collaborations=collaborations_of(request.user))
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            model = services.model_create(
                owner=request.user, title=data["title"], name=data.get("name") or "",
                summary=data.get("summary", ""), visibility=data["visibility"],
                collaboration=data.get("collaboration"), task=data["task"],
                domain=data["domain"], licence=data["licence"], keywords=form.keywords())
        except ValidationError as error:
            add_to_form(form, error)
        else:
            messages.success(request, "Model created: publish its first version.")
            return redirect("zoo:publish", name=model.name)
    return render(request, "zoo/model_form.html", {"form": form})


def _snippet(model: Model, version: ModelVersion, alias: str | None) -> str:
    ref = f'alias="{alias}"' if alias else f"version={version.number}"
    return (f'from erumlab.client import models\n'
            f'net = models.load("{model.name}", {ref})\n'
            + ("outputs = net.run(None, inputs)  # an ONNX Runtime session\n"
               if version.format == "onnx" else "net.eval()  # a torch.nn.Module\n"))


def _finetune_url(model: Model, version: ModelVersion) -> str | None:
    template = model.finetune_template
    if template is None and version.produced_by_id and version.produced_by.template:
        template = version.produced_by.template
    if template is None or not any(p["name"] == "base_model" for p in template.parameters):
        return None
    return (reverse("jobs:submit", args=[template.pk])
            + f"?base_model={model.name}@{version.number}")


def model_detail(request: HttpRequest, name: str, number: int | None = None) -> HttpResponse:
    model = _model_or_404(request, name)
    versions = list(model.versions.prefetch_related("metrics", "aliases", "files"))
    if number is not None:
        version = next((v for v in versions if v.number == number), None)
        if version is None:
            raise Http404("No such version.")
    elif versions:
        version = versions[0]
    else:
        version = None
    can_edit = services.can_edit(request.user, model)
    context = {"model": model, "versions": versions, "version": version, "can_edit": can_edit,
               "aliases": model.aliases.select_related("version"),
               "alias_moves": model.alias_moves.all()[:10],
               "conversions": model.conversions.filter(user=request.user)[:5]
               if request.user.is_authenticated else []}
    if version is not None:
        production = next((a.name for a in version.aliases.all()), None)
        context.update({
            "card_html": render_markdown(version.card),
            "metrics": version.metrics.select_related("dataset_version__dataset"),
            "lineage": selectors.lineage(request.user, version),
            "snippet": _snippet(model, version, production),
            "finetune_url": _finetune_url(model, version) if request.user.is_authenticated
            else None,
            "try_run": version.try_runs.first(),
            "alias_form": AliasForm(initial={"version": version.number}),
        })
        if len(versions) > 1:
            names, rows = selectors.comparison(versions)
            context["comparison"] = rows
    return render(request, "zoo/model_detail.html", context)


@login_required
def version_publish(request: HttpRequest, name: str) -> HttpResponse:
    model = _model_or_404(request, name)
    if not services.can_edit(request.user, model):
        raise PermissionDenied("Only the model's owner or its collaboration's maintainers can "
                               "publish versions.")
    form = PublishForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        weights = data["weights"]
        example = data.get("example_input")
        try:
            result = services.version_publish(
                model=model, actor=request.user,
                weights=services.Incoming(weights, weights.name, weights.size),
                example_input=services.Incoming(example, example.name, example.size)
                if example else None,
                publication=services.Publication(
                    architecture=data["architecture"].strip(), config=data["config_value"],
                    signature=data["signature_value"], card=data["card"],
                    changelog=data["changelog"], metrics=data["metrics_value"],
                    aliases=data["alias_list"]))
        except ValidationError as error:
            add_to_form(form, error)
        else:
            if isinstance(result, Conversion):
                messages.info(request, f"{weights.name} is being converted to safetensors by "
                                       f"a worker; the version appears when it passes the "
                                       f"checks.")
                return redirect("zoo:model", name=model.name)
            messages.success(request, f"Published version {result.number} as "
                                      f"{result.identifier}.")
            return redirect("zoo:version", name=model.name, number=result.number)
    return render(request, "zoo/version_publish.html", {"model": model, "form": form})


@login_required
@require_POST
def alias_set(request: HttpRequest, name: str) -> HttpResponse:
    model = _model_or_404(request, name)
    form = AliasForm(request.POST)
    if form.is_valid():
        try:
            services.alias_set(model=model, actor=request.user, name=form.cleaned_data["name"],
                               number=form.cleaned_data["version"])
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            messages.success(request, f"{form.cleaned_data['name']} now points to version "
                                      f"{form.cleaned_data['version']}.")
    else:
        messages.error(request, "Give an alias (lower-case, hyphens) and a version number.")
    return redirect("zoo:model", name=model.name)


def file_download(request: HttpRequest, name: str, number: int, file_id) -> HttpResponse:  # noqa: ANN001
    model = _model_or_404(request, name)
    version = _version_or_404(request, model, number)
    return file_response(request, get_object_or_404(version.files.all(), pk=file_id))


def metric_plot(request: HttpRequest, name: str, number: int, metric: str) -> HttpResponse:
    from erumlab.science.plots import curve_png

    version = _version_or_404(request, _model_or_404(request, name), number)
    found = version.metrics.filter(name=metric, curve__isnull=False).first()
    if found is None:
        raise Http404("This metric has no curve.")
    # Versions never change: the figure of (version, metric) never does either.
    key = f"zoo:plot:{version.pk}:{found.pk}"
    png = cache.get(key)
    if png is None:
        png = curve_png(found.curve, title=found.name, value=found.value)
        cache.set(key, png, timeout=7 * 24 * 3600)
    return HttpResponse(png, content_type="image/png",
                        headers={"Cache-Control": "private, max-age=86400"})


@require_POST
def try_it(request: HttpRequest, name: str, number: int) -> HttpResponse:
    version = _version_or_404(request, _model_or_404(request, name), number)
    try:
        run = services.try_run_start(version=version, actor=request.user)
    except ValidationError as error:
        return HttpResponse(" ".join(error.messages), status=422, content_type="text/plain")
    return render(request, "zoo/_try_run.html", {"run": run, "model": version.model,
                                                 "version": version})


def try_run_fragment(request: HttpRequest, name: str, number: int, run_id) -> HttpResponse:  # noqa: ANN001
    version = _version_or_404(request, _model_or_404(request, name), number)
    run = get_object_or_404(TryRun.objects.filter(version=version), pk=run_id)
    return render(request, "zoo/_try_run.html", {"run": run, "model": version.model,
                                                 "version": version})
