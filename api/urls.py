"""The contract's Test endpoints; each path answers with and without a trailing slash."""

from django.urls import re_path

from api import evaluation_views, views
from api.docs_views import RedocView, SchemaView, SwaggerView
from api.system_views import TokenCheckView

ID = r"(?P<cb_model_id>[^/]+)"

urlpatterns = [
    # First: Django tries the patterns in order, and these two are most of the traffic.
    re_path(
        r"^fetch_recommended_variant/?$",
        views.FetchRecommendedVariantView.as_view(),
        name="fetch_recommended_variant",
    ),
    re_path(rf"^update_model/{ID}/?$", views.UpdateTestView.as_view(), name="update_model"),
    re_path(
        r"^fetch_ranked_variants/?$",
        views.FetchRankedVariantsView.as_view(),
        name="fetch_ranked_variants",
    ),
    re_path(r"^schema/?$", SchemaView.as_view(), name="schema"),
    re_path(r"^docs/?$", SwaggerView.as_view(url_name="schema"), name="docs"),
    re_path(r"^redoc/?$", RedocView.as_view(url_name="schema"), name="redoc"),
    re_path(r"^token/check/?$", TokenCheckView.as_view(), name="token_check"),
    re_path(r"^create_model/?$", views.CreateTestView.as_view(), name="create_model"),
    re_path(rf"^delete_model/{ID}/?$", views.DeleteTestView.as_view(), name="delete_model"),
    re_path(r"^models/?$", views.ListTestsView.as_view(), name="models"),
    re_path(rf"^model_details/{ID}/?$", views.TestDetailsView.as_view(), name="model_details"),
    re_path(
        rf"^rollout_global_variant/{ID}/?$",
        views.RolloutView.as_view(),
        name="rollout_global_variant",
    ),
    re_path(rf"^add_variants/{ID}/?$", views.AddVariantsView.as_view(), name="add_variants"),
    re_path(rf"^retire_variant/{ID}/?$", views.RetireVariantView.as_view(), name="retire_variant"),
    re_path(
        rf"^decision_log/{ID}/?$", evaluation_views.DecisionLogView.as_view(), name="decision_log"
    ),
    re_path(rf"^evaluation/{ID}/?$", evaluation_views.EvaluationView.as_view(), name="evaluation"),
    re_path(rf"^metrics/{ID}/?$", evaluation_views.MetricsView.as_view(), name="metrics"),
    re_path(
        rf"^metrics/{ID}/(?P<metric>[^/]+)/?$",
        evaluation_views.MetricSeriesView.as_view(),
        name="metric_series",
    ),
    re_path(
        rf"^set_holdout_share/{ID}/?$",
        evaluation_views.HoldoutShareView.as_view(),
        name="set_holdout_share",
    ),
    re_path(
        rf"^clear_global_variant/{ID}/?$",
        views.ClearRolloutView.as_view(),
        name="clear_global_variant",
    ),
]
