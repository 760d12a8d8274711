"""Bearer tokens: a service key or a person's personal token, both stored hashed."""

from rest_framework import authentication, exceptions

from experiments.models import ServiceKey, UserToken


class ServicePrincipal:
    """The caller behind a service key: authenticated, but holds no Django permission."""

    is_authenticated = True
    is_active = True
    is_anonymous = False
    is_staff = False
    is_superuser = False
    is_service = True
    pk = None
    username = ""

    def __init__(self, service_key: ServiceKey):
        self.service_key = service_key
        self.username = f"service:{service_key.name}"

    def has_perm(self, perm: str, obj=None) -> bool:
        return False

    def __str__(self) -> str:
        return self.username


class BearerTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer <token>`, where the token is a service key or a personal token."""

    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Malformed Authorization header: use 'Bearer <token>'.")
        token = header[1].decode("latin-1")
        # Services call on every request, so their keys are looked up first.
        service_key = _usable_key(ServiceKey, token)
        if service_key is not None:
            return ServicePrincipal(service_key), service_key
        user_token = _usable_key(UserToken, token, related=("user",))
        if user_token is None:
            raise exceptions.AuthenticationFailed("Invalid, revoked or expired token.")
        if not user_token.user.is_active:
            raise exceptions.AuthenticationFailed("This user is inactive.")
        return user_token.user, user_token

    def authenticate_header(self, request) -> str:
        # Makes DRF answer 401 (not 403) when credentials are missing or wrong.
        return self.keyword


def _usable_key(model, token: str, related: tuple[str, ...] = ()):
    """The unrevoked, unexpired key whose prefix and hash match the token, or None."""
    prefix = token.partition(".")[0]
    key = model.objects.get_usable_keys().select_related(*related).filter(prefix=prefix).first()
    if key is None or key.has_expired or not key.is_valid(token):
        return None
    return key
