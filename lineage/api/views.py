"""The lineage door: OpenLineage ingestion (`POST /api/v1/lineage`, what the openlineage-python
client's HTTP transport calls, and the spec's batch endpoint `POST /api/v1/lineage/batch`) and
graph queries (`GET /api/v1/lineage?nodeId=...`,
`GET /api/v1/models/{full_name}/versions/{version}/lineage`). Parsing and rendering only: the
services validate, authorize and audit."""

from __future__ import annotations

import io
import re
import secrets
import zlib

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import ParseError, UnsupportedMediaType
from rest_framework.parsers import BaseParser
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from accounts.permissions import DoorView
from core.api import StrictJSONParser, query_one
from core.errors import InvalidParameter
from lineage import selectors, services
from registry.selectors.lineage import model_version_lineage

# Largest body (after gzip) one POST may carry: a batch of MAX_BATCH events with facets.
MAX_BODY = 8 * 1024 * 1024


def _read(stream, limit: int) -> bytes:
    data = stream.read(limit + 1) if stream is not None else b""
    if len(data) > limit:
        raise InvalidParameter(f"The request body is larger than {limit} bytes.")
    return data


def _gunzip(data: bytes, limit: int) -> bytes:
    """Decompress with a bound on the output, so a small bomb cannot fill the memory."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error:
        raise ParseError("The body is not valid gzip.") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise InvalidParameter(f"The request body is larger than {limit} bytes once unzipped.")
    if not inflater.eof or inflater.unused_data:
        raise ParseError("The body is not one complete gzip stream.")
    return out


class OpenLineageParser(BaseParser):
    """JSON as the OpenLineage client sends it: plain, or `Content-Encoding: gzip` (its
    `compression: gzip` option). Bodies are bounded before and after decompression, by
    MAX_BODY (the documented 8 MiB) both ways.

    Not a JSONParser subclass: DRF reads a JSONParser's body through `request.body`, which
    Django caps at DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB), so a plain 4 MiB batch was refused
    while the same batch gzipped passed. This parser reads the stream itself, up to MAX_BODY.
    """

    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):
        request = (parser_context or {}).get("request")
        meta = request.META if request is not None else {}
        encoding = meta.get("HTTP_CONTENT_ENCODING", "").strip().lower()
        data = _read(stream, MAX_BODY)
        if encoding == "gzip":
            data = _gunzip(data, MAX_BODY)
        elif encoding not in ("", "identity"):
            raise UnsupportedMediaType(f"Content-Encoding {encoding[:32]}")
        return StrictJSONParser().parse(io.BytesIO(data), media_type, parser_context)


class LineageRenderer(JSONRenderer):
    """DRF's JSON renderer; a graph (selectors.GraphAnswer) is already JSON text, and stored
    facets elsewhere (selectors.RawJSON) are spliced in as they are."""

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if isinstance(data, selectors.GraphAnswer):
            return data.render()
        raws: list[str] = []
        base = self.encoder_class
        nonce = secrets.token_hex(8)  # no string a client stored can pose as a slot

        class Encoder(base):
            def default(self, o):
                if isinstance(o, selectors.RawJSON):
                    raws.append(o.text)
                    return f"\x00{nonce}:{len(raws) - 1}\x00"
                return super().default(o)

        self.encoder_class = Encoder
        try:
            body = super().render(data, accepted_media_type, renderer_context)
        finally:
            self.encoder_class = base
        if not raws:
            return body
        slot = re.compile(rf'"\\u0000{nonce}:(\d+)\\u0000"')
        text = slot.sub(lambda m: raws[int(m.group(1))], body.decode())
        return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029").encode()


def _parameters(default_direction: str) -> list[OpenApiParameter]:
    return [
        OpenApiParameter("depth", int, description="hops to walk (default 5, at most 20)"),
        OpenApiParameter(
            "direction",
            str,
            enum=list(selectors.DIRECTIONS),
            description=f"default: {default_direction}",
        ),
    ]


class LineageView(DoorView):
    """POST: one OpenLineage event (RunEvent, DatasetEvent, JobEvent) or a JSON array of up to
    1,000; 201 when stored. GET: the graph around `nodeId`."""

    parser_classes = [OpenLineageParser]
    renderer_classes = [LineageRenderer]

    @extend_schema(
        request=dict,
        responses={201: dict},
        operation_id="lineage_ingest",
        description="Store OpenLineage events (spec 2-0-x); idempotent.",
    )
    def post(self, request):
        ids = services.lineage_events_ingest(actor=self.actor(), body=request.data)
        return Response({"accepted": len(ids), "node_ids": ids}, status=201)

    @extend_schema(
        parameters=[OpenApiParameter("nodeId", str, required=True), *_parameters("both")],
        responses=dict,
        operation_id="lineage_graph",
    )
    def get(self, request):
        node_id = query_one(request, "nodeId")
        if node_id in (None, ""):
            raise InvalidParameter("nodeId is required (e.g. dataset:<namespace>:<name>).")
        answer = selectors.lineage_graph(
            actor=self.actor(),
            node_id=node_id,
            depth=query_one(request, "depth"),
            direction=query_one(request, "direction"),
        )
        return Response(answer)


class LineageBatchView(DoorView):
    """OpenLineage's batch endpoint (spec 2-0-2, `POST /lineage/batch`): a JSON array of
    events, each accepted or refused on its own. 200 with per-event outcomes
    (`{"status", "summary", "failed_events"}`) once the request itself is acceptable."""

    parser_classes = [OpenLineageParser]

    @extend_schema(
        # Items are checked one by one and refused by index in the answer, not by the schema.
        request={"application/json": {"type": "array", "items": {}, "maxItems": 1000}},
        responses={200: dict},
        operation_id="lineage_ingest_batch",
        description=(
            "Store a batch of OpenLineage events (spec 2-0-x `postEventBatch`); idempotent. "
            "Malformed events, and links to securables the caller may not modify, are "
            "reported per event by index and store nothing; the others are stored."
        ),
    )
    def post(self, request):
        outcome = services.lineage_event_batch_ingest(actor=self.actor(), body=request.data)
        return Response(outcome.as_dict(), status=200)


class ModelVersionLineageView(DoorView):
    """The lineage of one model version (default: upstream)."""

    renderer_classes = [LineageRenderer]

    @extend_schema(
        parameters=_parameters("upstream"), responses=dict, operation_id="model_version_lineage"
    )
    def get(self, request, full_name: str, version: str):
        answer = model_version_lineage(
            actor=self.actor(),
            full_name=full_name,
            version=version,
            depth=query_one(request, "depth"),
            direction=query_one(request, "direction"),
        )
        return Response(answer)
