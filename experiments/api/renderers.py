"""orjson-backed JSON rendering and parsing, for the endpoints services call in bulk."""

import orjson
from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser
from rest_framework.renderers import BaseRenderer


class OrjsonRenderer(BaseRenderer):
    """Renders JSON with orjson (faster than json.dumps on large batches; bench/README.md)."""

    media_type = "application/json"
    format = "json"
    charset = None

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        if data is None:
            return b""
        return orjson.dumps(data)


class OrjsonParser(BaseParser):
    """Parses JSON with orjson; NaN and Infinity literals are malformed JSON, as in the standard."""

    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return orjson.loads(stream.read())
        except orjson.JSONDecodeError as error:
            raise ParseError(f"JSON parse error - {error}")
