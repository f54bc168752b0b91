from django.urls import re_path

from benchmarks.baseline import views

urlpatterns = [
    re_path(r"^api/fetch_recommended_variant/?$", views.DecideView.as_view()),
    re_path(r"^api/update_model/(?P<test_id>[^/]+)/?$", views.RewardView.as_view()),
]
