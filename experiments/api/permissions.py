"""Who may call what: people by Django permission, services only where a view allows them.

DRF checks permissions before it looks for the method's handler, so both classes first let an
unsupported method through: DRF then answers 405 with `Allow`, as for anyone (not a 403 that
would claim the method exists but is forbidden).
"""

from rest_framework.permissions import BasePermission


def is_service(user) -> bool:
    return getattr(user, "is_service", False)


def method_supported(request, view) -> bool:
    method = request.method.lower()
    return method in view.http_method_names and hasattr(view, method)


class PersonHasPermission(BasePermission):
    """A person (not a service key) holding the Django permission the view names for the method.

    Views set `required_permissions = {"GET": "experiments.view_experiment", ...}`; an
    action view names one permission for every method it allows.
    """

    message = "Service keys may only fetch assignments and post observations."

    def has_permission(self, request, view) -> bool:
        if not method_supported(request, view):
            return True  # DRF answers 405 Method Not Allowed
        user = request.user
        if not (user and user.is_authenticated) or is_service(user):
            return False
        permission = view.required_permissions.get(request.method)
        if permission is None:
            return False
        if not user.has_perm(permission):
            self.message = f"You lack the permission {permission!r}."
            return False
        return True


class ServiceOrPersonWithPermission(BasePermission):
    """A service key, or a person holding the view's `required_permission`."""

    message = "You need a service key or the permission to do this."

    def has_permission(self, request, view) -> bool:
        if not method_supported(request, view):
            return True  # DRF answers 405 Method Not Allowed
        user = request.user
        if not (user and user.is_authenticated):
            return False
        return is_service(user) or user.has_perm(view.required_permission)
