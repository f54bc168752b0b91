"""The REST API of the Test domain: thin views that validate shape, call a service, answer."""
