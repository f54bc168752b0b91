"""The forms of the console's Tests pages: a new Test, variants to add, and the settings an
operator changes on a running Test (its reward window, its holdout).

They only parse what a browser sends; the values are checked by the fields of the API's own
serializers (api.serializers), so the console and the REST API refuse the same input with the
same words.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from rest_framework import serializers
from unfold.widgets import (
    UnfoldAdminIntegerFieldWidget,
    UnfoldAdminSelectWidget,
    UnfoldAdminTextareaWidget,
    UnfoldAdminTextInputWidget,
)

from api import serializers as shapes
from api.validation import first_message, validated
from bandit import defaults, policy
from bandit.models import Test
from bandit.services import Schedule
from core.errors import Conflict


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
    holdout_share = forms.FloatField(
        label="Holdout share",
        initial=0.0,
        widget=UnfoldAdminIntegerFieldWidget(attrs={"step": "any"}),
        help_text=(
            "This share of the decisions (0 to 0.5) is chosen uniformly at random, as a plain "
            "split would: the dashboard then says whether the bandit earns more. 0: none."
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

    starts_at = forms.CharField(
        label="Starts at (UTC)",
        required=False,
        widget=UnfoldAdminTextInputWidget(
            attrs={"type": "datetime-local", "placeholder": "2027-03-05T00:00"}
        ),
        help_text=(
            "Until then the Test shows its first variant to everyone and learns nothing. "
            "Empty: it starts at once."
        ),
    )
    ends_at = forms.CharField(
        label="Ends at (UTC)",
        required=False,
        widget=UnfoldAdminTextInputWidget(
            attrs={"type": "datetime-local", "placeholder": "2027-03-08T23:59"}
        ),
        help_text="Empty: it never ends.",
    )
    on_end = forms.ChoiceField(
        label="At its end",
        choices=[
            (Schedule.KEEP, "Keep learning"),
            (Schedule.ROLLOUT_BEST, "Show everyone the variant most likely to be best"),
            (Schedule.VARIANT, "Show everyone this variant:"),
        ],
        initial=Schedule.KEEP,
        widget=UnfoldAdminSelectWidget,
    )
    on_end_variant = forms.CharField(
        label="Variant to show at the end",
        required=False,
        widget=UnfoldAdminTextInputWidget(attrs={"placeholder": "its label"}),
        help_text="The label of the variant shown to everyone at the end, if chosen above.",
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

    def clean_holdout_share(self) -> float:
        return _checked(
            lambda: _field("holdout_share").run_validation(self.cleaned_data.get("holdout_share"))
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
        cleaned["schedule"] = self._schedule(cleaned)
        chosen = {name: cleaned.get(name) for name in shapes.TestSettingsFields.SETTINGS}
        if None not in chosen.values():
            cleaned["test_settings"] = _checked(
                lambda: validated(shapes.TestSettingsFields, chosen)["test_settings"]
            )
        return cleaned

    def _schedule(self, cleaned: dict[str, Any]) -> Schedule:
        """The schedule, read by the API's own fields; the service checks the rest."""
        moments: dict[str, Any] = {}
        for name in ("starts_at", "ends_at"):
            text = (cleaned.get(name) or "").strip()
            moments[name] = None
            if text:
                try:
                    moments[name] = _field(name).run_validation(text)
                except serializers.ValidationError as exc:
                    self.add_error(name, first_message(exc.detail))
        on_end, variant = cleaned.get("on_end") or Schedule.KEEP, None
        if on_end == Schedule.VARIANT:
            variant = (cleaned.get("on_end_variant") or "").strip()
            if not variant:
                self.add_error("on_end_variant", "Name the variant to show at the end.")
        return Schedule(on_end=on_end, on_end_variant=variant, **moments)


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


class HoldoutForm(forms.Form):
    """A running Test's holdout share, checked by the API's own field."""

    holdout_share = TestCreateForm.base_fields["holdout_share"]
    clean_holdout_share = TestCreateForm.clean_holdout_share


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
