"""The operator's console: the Django admin (django-unfold) pages for Tests, the System page,
tokens, the audit log and the live log viewer. Every button calls the same services as the API,
with the logged-in operator as the audit actor."""
