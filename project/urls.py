from django.contrib import admin
from django.urls import include, path

from adminapi.logs_page import live_logs

urlpatterns = [
    path("api/", include("bandit.api.urls")),
    # The contract's system endpoints share /admin/ with the Django admin; they come first.
    path("admin/", include("adminapi.urls")),
    path("admin/logs/", admin.site.admin_view(live_logs), name="live_logs"),
    path("admin/", admin.site.urls),
    path("", include("project.observability.urls")),
]

handler400 = "project.errors.bad_request"
handler404 = "project.errors.not_found"
handler500 = "project.errors.server_error"
