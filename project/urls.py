from django.contrib import admin
from django.urls import include, path

from console.logs_page import live_logs

urlpatterns = [
    path("api/", include("api.urls")),
    # The contract's system endpoints share /admin/ with the Django admin; they come first.
    path("admin/", include("api.system_urls")),
    path("admin/logs/", admin.site.admin_view(live_logs), name="live_logs"),
    path("admin/", admin.site.urls),
    path("", include("api.observability_urls")),
]

handler400 = "api.errors.bad_request"
handler404 = "api.errors.not_found"
handler500 = "api.errors.server_error"
