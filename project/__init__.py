"""Scout's Django project: settings, URLs, the WSGI entry point and the `scout` command."""
