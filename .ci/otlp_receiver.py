"""An OTLP/HTTP receiver for CI: every POST to /v1/traces is parsed with the OpenTelemetry
protocol's own message types (PyPI `opentelemetry-proto`, read by protobuf's strict JSON
parser, unknown fields refused) after the one deviation OTLP's JSON encoding makes from
protobuf's (trace and span ids as hex, not base64). Each span is appended to OUT as one JSON
line {trace_id, span_id, parent_span_id, name, attributes}; a body that does not parse is
answered 400 and recorded as {"error": ...}.

usage: otlp_receiver.py PORT OUT"""

import base64
import json
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

port, out = int(sys.argv[1]), sys.argv[2]


def hex_to_base64(body):
    for resource in body.get("resourceSpans", []):
        for scope in resource.get("scopeSpans", []):
            for span in scope.get("spans", []):
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = base64.b64encode(bytes.fromhex(span[key])).decode()
    return body


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["content-length"]))
        try:
            assert self.path == "/v1/traces", self.path
            assert self.headers["content-type"].startswith("application/json"), self.headers["content-type"]
            request = json_format.Parse(json.dumps(hex_to_base64(json.loads(body))), ExportTraceServiceRequest())
            lines = []
            for resource in request.resource_spans:
                for scope in resource.scope_spans:
                    for span in scope.spans:
                        lines.append({
                            "trace_id": span.trace_id.hex(), "span_id": span.span_id.hex(),
                            "parent_span_id": span.parent_span_id.hex(), "name": span.name,
                            "attributes": {a.key: json_format.MessageToDict(a.value) for a in span.attributes},
                        })
            status = 200
        except Exception as error:  # noqa: BLE001 - any failure is the sender's
            lines, status = [{"error": repr(error)}], 400
        with open(out, "a") as file:
            for line in lines:
                file.write(json.dumps(line) + "\n")
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


HTTPServer(("127.0.0.1", port), Handler).serve_forever()
