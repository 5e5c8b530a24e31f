"""Checks Steward's DSSE envelopes with securesystemslib (a verifier nobody here wrote).

usage: dsse_verify.py BUNDLE_OR_ENVELOPE PUBLIC_KEY_PEM

Verifies the DSSE envelope (of a Sigstore bundle, or a bare one such as our SLSA provenance)
with the key, then checks that a changed payload and a key under another keyid are both
refused. A SLSA provenance statement is also checked with in-toto-attestation's validator.
Exits 1 on any surprise.
"""
import base64
import copy
import json
import sys

from cryptography.hazmat.primitives.serialization import load_pem_public_key
from securesystemslib.dsse import Envelope
from securesystemslib.signer import SSlibKey

document = json.load(open(sys.argv[1]))
bundle = document if "dsseEnvelope" in document else {"dsseEnvelope": document}
public = load_pem_public_key(open(sys.argv[2], "rb").read())
# from_dict consumes the dicts it is given, so each use gets a copy.
fresh = lambda: copy.deepcopy(bundle["dsseEnvelope"])
envelope = Envelope.from_dict(fresh())
keyids = list(envelope.signatures)
if not keyids or not keyids[0]:
    sys.exit("the DSSE signature has an empty keyid; securesystemslib cannot match it to a key")
key = SSlibKey.from_crypto(public, keyid=keyids[0])
envelope.verify([key], 1)
print(f"securesystemslib verified the DSSE envelope (keyid {keyids[0][:16]}…)")

changed = fresh()
payload = json.loads(base64.b64decode(changed["payload"]))
payload["subject"][0]["name"] = payload["subject"][0]["name"] + "-changed"
changed["payload"] = base64.b64encode(json.dumps(payload).encode()).decode()
try:
    Envelope.from_dict(changed).verify([key], 1)
except Exception as err:  # securesystemslib raises VerificationError
    print(f"a changed payload is refused: {type(err).__name__}: {err}")
else:
    sys.exit("securesystemslib accepted a changed payload")

other = SSlibKey.from_crypto(public, keyid="0" * 64)
try:
    Envelope.from_dict(fresh()).verify([other], 1)
except Exception as err:
    print(f"a key under another keyid is not used: {type(err).__name__}: {err}")
else:
    sys.exit("securesystemslib matched a signature to a key with another keyid")

payload = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
if payload.get("predicateType") == "https://slsa.dev/provenance/v1":
    from google.protobuf import json_format
    from in_toto_attestation.v1 import statement_pb2
    from in_toto_attestation.v1.statement import Statement

    parsed = json_format.Parse(json.dumps(payload), statement_pb2.Statement())
    Statement.copy_from_pb(parsed).validate()
    # The predicate must parse as SLSA v1 Provenance (protobuf refuses unknown fields).
    from in_toto_attestation.predicates.provenance.v1 import provenance_pb2

    predicate = json_format.Parse(json.dumps(payload["predicate"]), provenance_pb2.Provenance())
    if not predicate.build_definition.build_type or not predicate.run_details.builder.id:
        sys.exit("SLSA Build L1 needs buildDefinition.buildType and runDetails.builder.id")
    build_type = payload["predicate"]["buildDefinition"]["buildType"]
    print(f"in-toto-attestation validated the SLSA v1 statement ({len(payload['subject'])} subjects, {build_type})")
