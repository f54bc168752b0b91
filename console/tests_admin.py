"""The Tests pages of the operator's console: the list, the create form, deletion, and each
Test's dashboard with its actions (rollout, variants added and retired, the reward window, the
holdout), its metric history over a range, and its decision log as a download.

Every change goes through `bandit.services` and `bandit.changes` with the logged-in user as the
audit actor, the same rules the REST API follows; the forms (console.test_forms) check their
values with the API's own serializer fields. What the dashboard shows is assembled in
`bandit.dashboard`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
    JsonResponse,
    StreamingHttpResponse,
)
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.timesince import timesince
from redis.exceptions import RedisError
from unfold.admin import ModelAdmin
from unfold.decorators import display

from api.access import actor_of
from bandit import changes, dashboard, decision_log, history, services
from bandit.models import Test
from console.templatetags.scout_console import PALETTE
from console.test_forms import AddVariantsForm, HoldoutForm, RewardWindowForm, TestCreateForm
from core.errors import ServiceError

# The dashboard's history ranges: seconds back from now, and how the picker names them.
HISTORY_RANGES = {
    1800: "30 minutes",
    3600: "1 hour",
    3 * 3600: "3 hours",
    6 * 3600: "6 hours",
    12 * 3600: "12 hours",
    86_400: "1 day",
    3 * 86_400: "3 days",
    7 * 86_400: "7 days",
    14 * 86_400: "14 days",
}

REDIS_DOWN = "Redis is unavailable right now; nothing was changed. Try again shortly."
CHANGED_ON_THE_DASHBOARD = (
    "A Test changes through its dashboard's actions (variants, reward window, rollout), "
    "each through the services, not through the admin's change form."
)


class TestChangeList(ChangeList):
    """The list of Tests, with each shown Test's counters read from Redis in one round trip."""

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        counters = dashboard.list_counters(list(self.result_list))
        for test in self.result_list:
            test.counters = counters.get(str(test.id)) if counters is not None else None
        if counters is None and self.result_list:
            messages.warning(request, "Redis is unavailable: activity counters are not shown.")


class StateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("learning", "Learning"), ("rolled_out", "Rolled out"), ("scheduled", "Scheduled")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Test]) -> QuerySet[Test]:
        if self.value() == "learning":
            return queryset.filter(Test.learning())
        if self.value() == "rolled_out":
            return queryset.filter(global_variant_rollout__isnull=False)
        if self.value() == "scheduled":
            return queryset.filter(started_at__isnull=True)
        return queryset


@admin.register(Test)
class TestAdmin(ModelAdmin):
    list_display = (
        "name",
        "variant_list",
        "predictions",
        "rewards",
        "rollout",
        "state",
        "age",
    )
    list_display_links = ("name",)
    search_fields = ("name", "id")
    list_filter = (StateFilter, "created_at")
    ordering = ("-created_at",)
    list_per_page = 50
    add_form = TestCreateForm
    add_fieldsets = (
        (None, {"fields": ("name", "variant_labels")}),
        (
            "Settings",
            {
                "fields": (
                    "trail_time_window_minutes",
                    "trail_bucket_granularity_seconds",
                    "minimum_update_requests",
                    "sampling",
                    "prior",
                    "forgetting",
                    "minimum_variant_share",
                    "sticky_assignment",
                    "sticky_seconds",
                )
            },
        ),
        ("Rewards that never come", {"fields": ("reward_window_seconds", "default_reward")}),
        ("Measuring it against a plain split", {"fields": ("holdout_share",)}),
        ("Schedule", {"fields": ("starts_at", "ends_at", "on_end", "on_end_variant")}),
    )

    # --- The list -------------------------------------------------------------------------

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return TestChangeList

    @display(description="Variants")
    def variant_list(self, test: Test) -> str:
        labels = [str(test.variants[str(v)]) for v in test.variant_ids()]
        shown = ", ".join(labels[:4]) + (f" and {len(labels) - 4} more" if len(labels) > 4 else "")
        return f"{len(labels)}: {shown}"

    @display(description="Predictions")
    def predictions(self, test: Test) -> str:
        counters = getattr(test, "counters", None)
        return f"{counters.total_predictions:,}" if counters is not None else "–"

    @display(description="Rewards")
    def rewards(self, test: Test) -> str:
        counters = getattr(test, "counters", None)
        return f"{counters.total_updates:,}" if counters is not None else "–"

    @display(description="Rollout")
    def rollout(self, test: Test) -> str:
        if test.global_variant_rollout is None:
            return "–"
        return str(test.label_of(test.global_variant_rollout))

    @display(
        description="State",
        label={"Learning": "success", "Rolled out": "info", "Scheduled": "warning"},
    )
    def state(self, test: Test) -> str:
        if test.global_variant_rollout is not None:
            return "Rolled out"
        return "Scheduled" if test.waiting_to_start else "Learning"

    @display(description="Age", ordering="created_at")
    def age(self, test: Test) -> str:
        return format_html(
            '<span title="{}">{}</span>',
            test.created_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
            timesince(test.created_at, timezone.now()).split(",")[0],
        )

    # --- Create ---------------------------------------------------------------------------

    def get_form(self, request: HttpRequest, obj: Test | None = None, **kwargs: Any):
        if obj is None:
            kwargs["form"] = self.add_form
            kwargs["fields"] = None
        return super().get_form(request, obj, **kwargs)

    def get_fieldsets(self, request: HttpRequest, obj: Test | None = None):
        return self.add_fieldsets if obj is None else super().get_fieldsets(request, obj)

    def save_model(self, request: HttpRequest, obj: Test, form: Any, change: bool) -> None:
        """Create through the service (database row, Redis state and audit together); the
        admin then goes on with the created Test."""
        if change:
            raise PermissionDenied(CHANGED_ON_THE_DASHBOARD)
        test = services.create_test(
            name=form.cleaned_data["name"],
            variants=form.cleaned_data["variant_labels"],
            test_settings=form.cleaned_data["test_settings"],
            sampling=form.cleaned_data["sampling"],
            prior=form.cleaned_data["prior"],
            forgetting=form.cleaned_data["forgetting"],
            reward_window_seconds=form.cleaned_data["reward_window_seconds"],
            default_reward=form.cleaned_data["default_reward"],
            minimum_variant_share=form.cleaned_data["minimum_variant_share"],
            sticky_assignment=form.cleaned_data["sticky_assignment"],
            sticky_seconds=form.cleaned_data["sticky_seconds"],
            holdout_share=form.cleaned_data["holdout_share"],
            schedule=form.cleaned_data["schedule"],
            actor=actor_of(request),
        )
        for field in Test._meta.concrete_fields:
            setattr(obj, field.attname, getattr(test, field.attname))
        obj._state.adding = False
        obj._state.db = test._state.db

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context=None):
        # One way out of the form: the new Test's dashboard.
        extra_context = {
            **(extra_context or {}),
            "show_save_and_add_another": False,
            "show_save_and_continue": False,
        }
        try:
            return super().add_view(request, form_url, extra_context)
        except (ServiceError, RedisError) as exc:
            messages.error(request, _reason(exc))
            return HttpResponseRedirect(request.get_full_path())

    def response_add(self, request: HttpRequest, obj: Test, post_url_continue=None):
        messages.success(request, f"Test “{obj.name}” created. It answers decisions now.")
        return HttpResponseRedirect(reverse("admin:bandit_test_change", args=[obj.pk]))

    # --- Delete ---------------------------------------------------------------------------

    def delete_model(self, request: HttpRequest, obj: Test) -> None:
        """Through the service: the Test's Redis state goes with its row, and it is audited."""
        services.delete_test(str(obj.pk), actor_of(request))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Test]) -> None:
        for test in queryset:
            services.delete_test(str(test.pk), actor_of(request))

    def delete_view(self, request: HttpRequest, object_id: str, extra_context=None):
        try:
            return super().delete_view(request, object_id, extra_context)
        except (ServiceError, RedisError) as exc:
            messages.error(request, _reason(exc))
            return HttpResponseRedirect(reverse("admin:bandit_test_change", args=[object_id]))

    # --- The dashboard --------------------------------------------------------------------

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("<uuid:object_id>/live/", wrap(self.live_view), name="bandit_test_live"),
            path(
                "<uuid:object_id>/rollout/<int:variant_id>/",
                wrap(self.rollout_view),
                name="bandit_test_rollout",
            ),
            path(
                "<uuid:object_id>/retire/<int:variant_id>/",
                wrap(self.retire_view),
                name="bandit_test_retire",
            ),
            path(
                "<uuid:object_id>/add_variants/",
                wrap(self.add_variants_view),
                name="bandit_test_add_variants",
            ),
            path(
                "<uuid:object_id>/reward_window/",
                wrap(self.reward_window_view),
                name="bandit_test_reward_window",
            ),
            path(
                "<uuid:object_id>/holdout/",
                wrap(self.holdout_view),
                name="bandit_test_holdout",
            ),
            path(
                "<uuid:object_id>/decision_log.csv",
                wrap(self.decision_log_view),
                name="bandit_test_decision_log",
            ),
            path(
                "<uuid:object_id>/history/<str:metric>/",
                wrap(self.history_view),
                name="bandit_test_history",
            ),
            path(
                "<uuid:object_id>/clear_rollout/",
                wrap(self.clear_rollout_view),
                name="bandit_test_clear_rollout",
            ),
            *super().get_urls(),
        ]

    def _test_or_404(self, request: HttpRequest, object_id: str) -> Test:
        test = self.get_object(request, str(object_id))
        if test is None:
            raise Http404(f"Test {object_id} not found.")
        if not self.has_view_permission(request, test):
            raise PermissionDenied
        return test

    def _dashboard_context(self, request: HttpRequest, test: Test) -> dict[str, Any]:
        try:
            data = dashboard.dashboard(str(test.pk))
            error = None
        except (ServiceError, RedisError) as exc:
            data, error = None, _reason(exc)
        return {"test": test, "dashboard": data, "dashboard_error": error}

    def change_view(self, request: HttpRequest, object_id: str, form_url="", extra_context=None):
        """A Test's page is its dashboard, whose own actions change it."""
        if request.method != "GET":
            raise PermissionDenied(CHANGED_ON_THE_DASHBOARD)
        test = self._test_or_404(request, object_id)
        context = {
            **self.admin_site.each_context(request),
            **self._dashboard_context(request, test),
            "title": test.name,
            "opts": self.opts,
            "original": test,
            "has_delete_permission": self.has_delete_permission(request, test),
            "has_change_permission": self.has_change_permission(request, test),
            "refresh_seconds": 5,
            "history_ranges": list(HISTORY_RANGES.items()),
            "history_metrics": list(history.METRICS),
            # Read once per page, not with every refresh: it reads the whole decision log.
            "policies": self._policies(test),
        }
        return TemplateResponse(request, "admin/bandit/test/dashboard.html", context)

    @staticmethod
    def _policies(test: Test) -> dict[str, Any] | None:
        try:
            return dashboard.policies(str(test.pk))
        except (ServiceError, RedisError):
            return None  # the dashboard's own card says what is down

    def live_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The refreshing part of the dashboard, fetched every few seconds while it is open."""
        test = self._test_or_404(request, object_id)
        context = {
            **self._dashboard_context(request, test),
            "has_change_permission": self.has_change_permission(request, test),
        }
        status = 200 if context["dashboard"] is not None else 503
        return TemplateResponse(
            request, "admin/bandit/test/dashboard_live.html", context, status=status
        )

    def history_view(self, request: HttpRequest, object_id: str, metric: str) -> JsonResponse:
        """A metric's series over the range the dashboard's picker chose (`range`, seconds
        back from now), as the API answers it, with the variants' labels."""
        test = self._test_or_404(request, object_id)
        try:
            seconds = int(request.GET.get("range", "3600"))
        except ValueError:
            seconds = 0
        if seconds not in HISTORY_RANGES:
            return JsonResponse(
                {"detail": f"range must be one of {sorted(HISTORY_RANGES)}."}, status=400
            )
        end = timezone.now()
        try:
            body = history.series(test, metric, end - timedelta(seconds=seconds), end)
        except ServiceError as exc:
            return JsonResponse({"detail": _reason(exc)}, status=exc.status_code)
        body["labels"] = {key: str(label) for key, label in test.variants.items()}
        body["colors"] = {
            str(variant): PALETTE[i % len(PALETTE)] for i, variant in enumerate(test.variant_ids())
        }
        body["range_label"] = HISTORY_RANGES[seconds]
        return JsonResponse(body)

    def rollout_view(self, request: HttpRequest, object_id: str, variant_id: int):
        """Confirm, then serve one variant to everyone from the next request on."""
        return self._variant_action(
            request,
            object_id,
            variant_id,
            changes.rollout,
            done="“{label}” is now served to every visitor.",
            title="Roll out “{label}” to everyone?",
            text=(
                "Every decision will answer this variant from the next request on, on every "
                "worker. Rewards keep teaching the Test, and you can clear the rollout at any "
                "time to let it choose again."
            ),
            button="Yes, roll it out",
        )

    def retire_view(self, request: HttpRequest, object_id: str, variant_id: int):
        """Confirm, then stop serving a variant from the next request on."""
        return self._variant_action(
            request,
            object_id,
            variant_id,
            changes.retire_variant,
            done="“{label}” is retired.",
            title="Retire “{label}”?",
            text=(
                "No visitor will be served this variant from the next request on, on every "
                "worker. Its figures stay on the dashboard, rewards for the decisions already "
                "made still count, and the Test goes on learning about the others."
            ),
            button="Yes, retire it",
        )

    def _variant_action(
        self,
        request: HttpRequest,
        object_id: str,
        variant_id: int,
        action: Callable[..., Any],
        *,
        done: str,
        title: str,
        text: str,
        button: str,
    ):
        """A change to one variant of a Test: confirmed on a page of its own, then made by
        `action` (a service taking the Test id, the variant id and the actor) on the POST."""
        test = self._test_or_404(request, object_id)
        if not self.has_change_permission(request, test):
            raise PermissionDenied
        if str(variant_id) not in test.variants:
            messages.error(request, f"Variant {variant_id} is not a variant of this Test.")
            return self._back(test)
        label = test.label_of(variant_id)
        if request.method == "POST":
            try:
                action(str(test.pk), variant_id, actor_of(request))
            except (ServiceError, RedisError) as exc:
                messages.error(request, _reason(exc))
            else:
                messages.success(request, done.format(label=label))
            return self._back(test)
        return self._confirm(
            request, test, title=title.format(label=label), text=text, button=button
        )

    def clear_rollout_view(self, request: HttpRequest, object_id: str):
        test = self._test_or_404(request, object_id)
        if not self.has_change_permission(request, test):
            raise PermissionDenied
        if request.method == "POST":
            try:
                changes.clear_rollout(str(test.pk), actor_of(request))
            except (ServiceError, RedisError) as exc:
                messages.error(request, _reason(exc))
            else:
                messages.success(request, "Rollout cleared: the Test chooses by itself again.")
            return self._back(test)
        return self._confirm(
            request,
            test,
            title="Clear the rollout?",
            text="The Test goes back to Thompson sampling from the next request on.",
            button="Yes, clear it",
        )

    def add_variants_view(self, request: HttpRequest, object_id: str):
        """Add variants to the running Test; they are served from the next request on."""
        test = self._test_or_404(request, object_id)
        if not self.has_change_permission(request, test):
            raise PermissionDenied
        form = AddVariantsForm(request.POST or None, first_id=max(test.variant_ids()) + 1)
        if request.method == "POST" and form.is_valid():
            try:
                _, added = changes.add_variants(
                    str(test.pk),
                    form.cleaned_data["variant_labels"],
                    maximum=settings.SCOUT_MAX_VARIANTS,
                    actor=actor_of(request),
                )
            except (ServiceError, RedisError) as exc:
                messages.error(request, _reason(exc))
            else:
                messages.success(
                    request, f"Added {len(added)} variant(s): they are served from now on."
                )
                return self._back(test)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Add variants to “{test.name}”",
            "text": (
                "What the Test learned about its variants is kept; the new ones are chosen "
                "among from the next decision on, on every worker."
            ),
            "form": form,
            "opts": self.opts,
            "original": test,
            "test": test,
        }
        return TemplateResponse(request, "admin/bandit/test/settings_form.html", context)

    def reward_window_view(self, request: HttpRequest, object_id: str):
        """Change how long the Test's decisions wait for their reward, and what one that gets
        none counts; it holds from the next decision on, on every worker."""
        test = self._test_or_404(request, object_id)
        if not self.has_change_permission(request, test):
            raise PermissionDenied
        initial = {
            "reward_window_seconds": test.reward_window_seconds,
            "default_reward": test.default_reward,
        }
        form = RewardWindowForm(request.POST or None, initial=initial)
        if request.method == "POST" and form.is_valid():
            seconds = form.cleaned_data["reward_window_seconds"]
            try:
                changes.set_reward_window(
                    str(test.pk),
                    seconds=seconds,
                    default_reward=form.cleaned_data["default_reward"],
                    actor=actor_of(request),
                )
            except (ServiceError, RedisError) as exc:
                messages.error(request, _reason(exc))
            else:
                messages.success(
                    request,
                    f"Decisions wait {seconds} s for their reward from now on."
                    if seconds is not None
                    else "Decisions wait for their reward for ever from now on.",
                )
                return self._back(test)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Reward window of “{test.name}”",
            "text": (
                "A decision that gets no reward within the window counts once with the default "
                "reward, so a product that reports only conversions still teaches the Test "
                "what did not convert. A reward that comes after its window is late and not "
                "counted. A change holds from the next decision on; decisions made before "
                "keep the window they were made with."
            ),
            "form": form,
            "opts": self.opts,
            "original": test,
            "test": test,
        }
        return TemplateResponse(request, "admin/bandit/test/settings_form.html", context)

    def holdout_view(self, request: HttpRequest, object_id: str):
        """Change the share of the Test's decisions chosen uniformly at random; it holds from
        the next decision on, on every worker."""
        test = self._test_or_404(request, object_id)
        if not self.has_change_permission(request, test):
            raise PermissionDenied
        form = HoldoutForm(request.POST or None, initial={"holdout_share": test.holdout_share})
        if request.method == "POST" and form.is_valid():
            share = form.cleaned_data["holdout_share"]
            try:
                changes.set_holdout_share(str(test.pk), share, actor=actor_of(request))
            except (ServiceError, RedisError) as exc:
                messages.error(request, _reason(exc))
            else:
                messages.success(
                    request, f"{share:.0%} of the decisions are the holdout's from now on."
                )
                return self._back(test)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Holdout of “{test.name}”",
            "text": (
                "This share of the decisions is chosen uniformly at random, as a plain split "
                "would choose, and still teaches the Test. Comparing their rewards with the "
                "bandit's tells whether the bandit earns more. A larger share measures the "
                "difference sooner and costs more while the bandit is ahead."
            ),
            "form": form,
            "opts": self.opts,
            "original": test,
            "test": test,
        }
        return TemplateResponse(request, "admin/bandit/test/settings_form.html", context)

    def decision_log_view(self, request: HttpRequest, object_id: str) -> StreamingHttpResponse:
        """The Test's decision log as a CSV download, streamed as the API streams it."""
        test = self._test_or_404(request, object_id)
        lines = decision_log.csv_lines(decision_log.records(test, None, None))
        response = StreamingHttpResponse(lines, content_type="text/csv")
        response["Content-Disposition"] = f'attachment; filename="decision-log-{test.pk}.csv"'
        return response

    def _confirm(self, request: HttpRequest, test: Test, *, title: str, text: str, button: str):
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "text": text,
            "button": button,
            "opts": self.opts,
            "original": test,
            "test": test,
        }
        return TemplateResponse(request, "admin/bandit/test/confirm.html", context)

    @staticmethod
    def _back(test: Test) -> HttpResponseRedirect:
        return HttpResponseRedirect(reverse("admin:bandit_test_change", args=[test.pk]))


def _reason(exc: Exception) -> str:
    if isinstance(exc, ServiceError):
        return exc.detail
    return REDIS_DOWN
