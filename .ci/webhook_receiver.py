"""A webhook receiver nobody on the team wrote the checks of: every request must verify with
the Standard Webhooks reference library and parse as a CloudEvent with the CloudEvents SDK.

usage: webhook_receiver.py PORT SECRET_FILE OUT_JSONL
Writes one JSON line per accepted event ({"type", "id", "subject", "source"}), and
`OUT_JSONL.errors` for every request refused (answered 400)."""

import json
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

from cloudevents.core.bindings.http import HTTPMessage, from_http_event
from standardwebhooks.webhooks import Webhook

port, secret_file, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        headers = {key.lower(): value for key, value in self.headers.items()}
        try:
            with open(secret_file) as f:
                secret = f.read().strip()
            Webhook(secret).verify(body, headers)
            event = from_http_event(HTTPMessage(headers=headers, body=body))
            record = {
                "type": event.get_type(),
                "id": event.get_id(),
                "subject": event.get_subject(),
                "source": event.get_source(),
                "specversion": event.get_specversion(),
                "time": event.get_time().isoformat(),
                "seq": event.get_data()["seq"],
            }
            with open(out, "a") as f:
                f.write(json.dumps(record) + "\n")
            self.send_response(204)
        except Exception as err:  # noqa: BLE001 - every refusal is recorded for CI to see
            with open(out + ".errors", "a") as f:
                f.write(f"{type(err).__name__}: {err}\n")
            self.send_response(400)
        self.end_headers()

    def log_message(self, *args):
        pass


HTTPServer(("127.0.0.1", port), Handler).serve_forever()
