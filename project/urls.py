from django.contrib import admin
from django.urls import include, path

from console.logs_page import live_logs

# An unknown path under /admin/ is a 404 (JSON, as everywhere), not the Django admin's
# redirect to its login page: API clients call the system endpoints there, with HTTP Basic,
# and a mistyped one must say so. The console's own pages still ask anonymous users to log in.
admin.site.final_catch_all_view = False

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
