"""Steward's kill switches, read by applications through the OpenFeature SDK with the
OpenFeature Remote Evaluation Protocol provider (neither written by the team).

usage: ofrep_check.py BASE_URL FLAG_KEY EXPECTED(true|false)"""

import sys

from openfeature import api
from openfeature.contrib.provider.ofrep import OFREPProvider
from openfeature.flag_evaluation import ErrorCode, Reason

base_url, key, expected = sys.argv[1], sys.argv[2], sys.argv[3] == "true"
api.set_provider(OFREPProvider(base_url=base_url))
client = api.get_client()
details = client.get_boolean_details(key, not expected)
assert details.value is expected, details
assert details.reason == Reason.STATIC and details.error_code is None, details
assert details.variant == ("on" if expected else "off"), details
missing = client.get_boolean_details("retail:credit:staging:no-such-flag", True)
assert missing.value is True and missing.error_code == ErrorCode.FLAG_NOT_FOUND, missing
print(f"OpenFeature over OFREP: {key} = {details.value}; unknown flags fall back to the default")
