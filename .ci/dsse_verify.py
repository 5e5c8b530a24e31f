"""Checks Steward's DSSE envelopes with securesystemslib (a verifier nobody here wrote).

usage: dsse_verify.py BUNDLE PUBLIC_KEY_PEM

Verifies the Sigstore bundle's DSSE envelope with the key, then checks that a changed
payload and a key under another keyid are both refused. Exits 1 on any surprise.
"""
import base64
import copy
import json
import sys

from cryptography.hazmat.primitives.serialization import load_pem_public_key
from securesystemslib.dsse import Envelope
from securesystemslib.signer import SSlibKey

bundle = json.load(open(sys.argv[1]))
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
