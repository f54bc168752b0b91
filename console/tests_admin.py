"""The Tests pages of the operator's console: the list, the create form, deletion, and each
Test's dashboard with its actions (rollout, variants added and retired, the reward window).

Every change goes through `bandit.services` with the logged-in user as the audit actor, the
same rules the REST API follows; the create form checks its values with the API's own
serializer. What the dashboard shows is assembled in `bandit.dashboard`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.timesince import timesince
from redis.exceptions import RedisError
from rest_framework import serializers
from unfold.admin import ModelAdmin
from unfold.decorators import display
from unfold.widgets import (
    UnfoldAdminIntegerFieldWidget,
    UnfoldAdminSelectWidget,
    UnfoldAdminTextareaWidget,
    UnfoldAdminTextInputWidget,
)

from api import serializers as shapes
from api.access import actor_of
from api.validation import first_message, validated
from bandit import changes, dashboard, defaults, policy, services
from bandit.models import Test
from core.errors import Conflict, ServiceError

REDIS_DOWN = "Redis is unavailable right now; nothing was changed. Try again shortly."
CHANGED_ON_THE_DASHBOARD = (
    "A Test changes through its dashboard's actions (variants, reward window, rollout), "
    "each through the services, not through the admin's change form."
)


class TestCreateForm(forms.ModelForm):
    """A new Test: name, variant labels one per line (ids 0, 1, 2... in that order), and its
    own trail window, granularity and minimum rewards (the current defaults preset)."""

    variant_labels = forms.CharField(
        label="Variants",
        widget=UnfoldAdminTextareaWidget(attrs={"rows": 4, "placeholder": "Blue\nGreen"}),
        help_text="One label per line; the first gets variant id 0, the next 1, and so on.",
    )
    trail_time_window_minutes = forms.IntegerField(
        label="Trail window (minutes)",
        widget=UnfoldAdminIntegerFieldWidget,
        help_text="How far back the dashboard's charts and the trails reach.",
    )
    trail_bucket_granularity_seconds = forms.IntegerField(
        label="Trail granularity (seconds)",
        widget=UnfoldAdminIntegerFieldWidget,
        help_text="The size of one point of the charts.",
    )
    minimum_update_requests = forms.IntegerField(
        label="Minimum rewards",
        widget=UnfoldAdminIntegerFieldWidget,
        help_text="Until the Test has this many rewards, variants are chosen uniformly.",
    )
    sampling = forms.ChoiceField(
        label="Sampling",
        choices=[
            (policy.FOCUSED, "Focused (recommended)"),
            (policy.OPTIMISTIC, "Optimistic"),
            (policy.STANDARD, "Standard Thompson sampling"),
        ],
        initial=policy.FOCUSED,
        widget=UnfoldAdminSelectWidget,
        help_text=(
            "Optimistic never samples a variant below its estimate: it explores what is "
            "uncertain and spends less on bad luck. Focused is optimistic, and with more than "
            "three variants lets about three of them compete by their draws in each decision, "
            "the rest by their estimates. Standard is the textbook rule."
        ),
    )
    prior = forms.ChoiceField(
        label="Prior of a rate",
        choices=[
            (policy.POOLED, "Pooled (recommended)"),
            (policy.FLAT, "Flat, Beta(1, 1)"),
        ],
        initial=policy.POOLED,
        widget=UnfoldAdminSelectWidget,
        help_text=(
            "For 0/1 rewards. Pooled starts each variant's estimate at the rate of the whole "
            "Test, which spares exploring many variants whose rates are low; flat starts every "
            "variant at 50%."
        ),
    )
    forgetting = forms.ChoiceField(
        label="Forgetting",
        choices=[
            (policy.ON_CHANGE, "When its rewards change (recommended)"),
            (policy.NEVER, "Never"),
        ],
        initial=policy.ON_CHANGE,
        widget=UnfoldAdminSelectWidget,
        help_text=(
            "When a variant's recent rewards differ from the rest of its evidence by more than "
            "chance allows, it learns from its recent rewards alone, so yesterday's winner "
            "does not keep its traffic. Tests with a context never forget."
        ),
    )

    minimum_variant_share = forms.FloatField(
        label="Minimum share of each variant",
        initial=0.0,
        widget=UnfoldAdminIntegerFieldWidget(attrs={"step": "any"}),
        help_text=(
            "Each variant keeps at least this share of the decisions (0 to 1/k for k "
            "variants), so the Test never stops looking at any of them. 0: no floor."
        ),
    )
    sticky_assignment = forms.BooleanField(
        label="Sticky assignment",
        required=False,
        help_text=(
            "A visitor (the decision's unit_id) keeps the variant it was given, so the page "
            "does not change on every load."
        ),
    )
    sticky_seconds = forms.IntegerField(
        label="Sticky for (seconds)",
        initial=86_400,
        widget=UnfoldAdminIntegerFieldWidget,
        help_text="How long a visitor keeps its variant, from when it was given.",
    )
    reward_window_seconds = forms.IntegerField(
        label="Reward window (seconds)",
        required=False,
        widget=UnfoldAdminIntegerFieldWidget(attrs={"placeholder": "off"}),
        help_text=(
            "How long a decision waits for its reward; one that gets none in time counts the "
            "default reward. Leave empty when every decision gets a reward."
        ),
    )
    default_reward = forms.FloatField(
        label="Default reward",
        initial=0.0,
        widget=UnfoldAdminIntegerFieldWidget(attrs={"step": "any"}),
        help_text="What a decision counts when its window closes without a reward.",
    )

    class Meta:
        model = Test
        fields = ["name"]
        widgets = {"name": UnfoldAdminTextInputWidget}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name, value in defaults.current().as_dict().items():
            self.fields[name].initial = value

    def clean_name(self) -> str:
        return _checked(lambda: _field("name").run_validation(self.cleaned_data.get("name")))

    def clean_variant_labels(self) -> dict[int, str]:
        lines = [line.strip() for line in self.cleaned_data["variant_labels"].splitlines()]
        labels = {str(i): label for i, label in enumerate(line for line in lines if line)}
        return _checked(lambda: _field("variants").run_validation(labels))

    def clean_reward_window_seconds(self) -> int | None:
        return _checked(
            lambda: _field("reward_window_seconds").run_validation(
                self.cleaned_data.get("reward_window_seconds")
            )
        )

    def clean_sticky_seconds(self) -> int:
        return _checked(
            lambda: _field("sticky_seconds").run_validation(self.cleaned_data.get("sticky_seconds"))
        )

    def clean_default_reward(self) -> float:
        return _checked(
            lambda: _field("default_reward").run_validation(self.cleaned_data.get("default_reward"))
        )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        assert cleaned is not None  # Django's clean() answers cleaned_data; overrides may not
        share, labels = cleaned.get("minimum_variant_share"), cleaned.get("variant_labels")
        if share is not None and labels:
            problem = defaults.minimum_share_problem(share, len(labels))
            if problem:
                self.add_error("minimum_variant_share", problem)
        chosen = {name: cleaned.get(name) for name in shapes.TestSettingsFields.SETTINGS}
        if None not in chosen.values():
            cleaned["test_settings"] = _checked(
                lambda: validated(shapes.TestSettingsFields, chosen)["test_settings"]
            )
        return cleaned


class AddVariantsForm(forms.Form):
    """Labels of variants to add, one per line; they get the next ids after every id the Test
    ever had."""

    variant_labels = forms.CharField(
        label="New variants",
        widget=UnfoldAdminTextareaWidget(attrs={"rows": 3, "placeholder": "Purple"}),
        help_text="One label per line.",
    )

    def __init__(self, *args: Any, first_id: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.first_id = first_id

    def clean_variant_labels(self) -> dict[int, str]:
        lines = [line.strip() for line in self.cleaned_data["variant_labels"].splitlines()]
        labels = {
            str(self.first_id + i): label for i, label in enumerate(line for line in lines if line)
        }
        field = shapes.AddVariantsRequest().fields["variants"]
        return _checked(lambda: field.run_validation(labels))


class RewardWindowForm(forms.Form):
    """A running Test's reward window and default reward, checked by the API's own fields."""

    reward_window_seconds = TestCreateForm.base_fields["reward_window_seconds"]
    default_reward = TestCreateForm.base_fields["default_reward"]
    clean_reward_window_seconds = TestCreateForm.clean_reward_window_seconds
    clean_default_reward = TestCreateForm.clean_default_reward


def _field(name: str) -> serializers.Field:
    """A field of the API's create serializer, bound to its name."""
    return shapes.CreateTestRequest().fields[name]


def _checked(check: Callable[[], Any]) -> Any:
    """Run a check of the API's serializers; its refusal becomes a form error."""
    try:
        return check()
    except serializers.ValidationError as exc:
        raise forms.ValidationError(first_message(exc.detail)) from None
    except Conflict as exc:  # two variants with one label
        raise forms.ValidationError(exc.detail) from None


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
        return [("learning", "Learning"), ("rolled_out", "Rolled out")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Test]) -> QuerySet[Test]:
        if self.value() == "learning":
            return queryset.filter(global_variant_rollout__isnull=True)
        if self.value() == "rolled_out":
            return queryset.filter(global_variant_rollout__isnull=False)
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

    @display(description="State", label={"Learning": "success", "Rolled out": "info"})
    def state(self, test: Test) -> str:
        return "Learning" if test.is_active else "Rolled out"

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
        }
        return TemplateResponse(request, "admin/bandit/test/dashboard.html", context)

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
