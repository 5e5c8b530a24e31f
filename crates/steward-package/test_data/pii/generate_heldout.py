"""Generates `heldout.jsonl`: a labelled PII fixture whose values come from Faker (a generator
nobody here wrote), seeded so that it is reproducible. The detector's rules were written
against `labelled.jsonl`, never against this file; it measures how they generalise.

    pip install faker==40.63.0
    python generate_heldout.py > heldout.jsonl              # development set (seed 20261127)
    python generate_heldout.py 1 > heldout-test.jsonl       # test set, scored once, never tuned on

Each line is {"text": ..., "entities": [[TYPE, VALUE], ...]}; negatives have no entities and
hold look-alikes (Luhn-failing card numbers, SSNs in invalid ranges, IBANs with a wrong check,
dates without a birth context, version strings).
"""
import datetime
import json
import random
import sys

from faker import Faker

SEED = int(sys.argv[1]) if len(sys.argv) > 1 else 20261127
N_PER_ENTITY = 100
random.seed(SEED)
Faker.seed(SEED)
us, gb, de, fr, nl, es = (Faker(locale) for locale in ["en_US", "en_GB", "de_DE", "fr_FR", "nl_NL", "es_ES"])
lines = []


def emit(template, *pairs):
    """`template` has one `{}` per (TYPE, VALUE) pair, filled in order."""
    text = template.format(*(value for _, value in pairs))
    lines.append({"text": text, "entities": [[kind, value] for kind, value in pairs]})


def negative(text):
    lines.append({"text": text, "entities": []})


email_templates = [
    "Please contact {} about the renewal.",
    "Sent by {} on behalf of the team.",
    "reply-to: {}",
    "Escalations go to {}; weekends excluded.",
    "The reviewer ({}) signed off the card.",
]
for _ in range(N_PER_ENTITY):
    value = random.choice([us.email(), us.company_email(), gb.free_email(), de.email(), us.ascii_safe_email()])
    emit(random.choice(email_templates), ("EMAIL", value))

phone_templates = [
    "Call {} to confirm the appointment.",
    "Phone: {}",
    "The customer left {} as a callback number.",
    "Support line {} is staffed around the clock.",
    "tel {} (mobile)",
]
for _ in range(N_PER_ENTITY):
    faker = random.choice([us, us, gb, de, fr])
    value = faker.phone_number()
    emit(random.choice(phone_templates), ("PHONE", value))

card_templates = [
    "Card number {} was declined.",
    "Charged to {} on the 3rd.",
    "PAN: {}",
    "The refund goes back to card {}.",
]
card_types = ["visa16", "visa13", "mastercard", "amex", "discover", "jcb16", "diners", "maestro"]
for _ in range(N_PER_ENTITY):
    value = us.credit_card_number(card_type=random.choice(card_types))
    if random.random() < 0.3 and len(value) == 16:
        value = " ".join(value[i : i + 4] for i in range(0, 16, 4))
    emit(random.choice(card_templates), ("CREDIT_CARD", value))

iban_templates = [
    "Transfer the deposit to {} by Friday.",
    "IBAN {}",
    "Payout account: {}.",
    "Direct debit from {} was set up.",
]
for _ in range(N_PER_ENTITY):
    value = random.choice([de, fr, gb, nl, es]).iban()
    if random.random() < 0.4:
        value = " ".join(value[i : i + 4] for i in range(0, len(value), 4))
    emit(random.choice(iban_templates), ("IBAN", value))

ssn_templates = [
    "SSN {} on file.",
    "Social security number: {}",
    "The applicant's SSN is {}.",
    "Verify {} against the payroll record.",
]
for _ in range(N_PER_ENTITY):
    emit(random.choice(ssn_templates), ("US_SSN", us.ssn()))

ip_templates = [
    "Login from {} was blocked.",
    "client_ip={} status=200",
    "The scoring service at {} timed out.",
    "Requests from {} exceeded the rate limit.",
]
for _ in range(N_PER_ENTITY):
    value = random.choice([us.ipv4(), us.ipv4_public(), us.ipv4_private(), us.ipv6()])
    emit(random.choice(ip_templates), ("IP_ADDRESS", value))

dob_templates = [
    "Date of birth: {}",
    "DOB {}",
    "The patient was born on {}.",
    "born {} in Leeds",
    "Applicant DOB: {}.",
]
dob_formats = ["%Y-%m-%d", "%d/%m/%Y", "%m/%d/%Y", "%d.%m.%Y", "%B %d, %Y", "%d %B %Y"]
for _ in range(N_PER_ENTITY):
    # Fixed bounds, not relative to today, so the file is the same every day.
    born = us.date_between_dates(datetime.date(1936, 1, 1), datetime.date(2007, 12, 31))
    value = born.strftime(random.choice(dob_formats))
    emit(random.choice(dob_templates), ("DATE_OF_BIRTH", value))

# Mixed lines: two entity types in one sentence.
for _ in range(N_PER_ENTITY // 2):
    emit("Reach {} or {} before noon.", ("EMAIL", us.email()), ("PHONE", us.phone_number()))

# Look-alikes that are not personal data.
def luhn_failing(number):
    digits = list(number)
    last = int(digits[-1])
    digits[-1] = str((last + 1) % 10)
    return "".join(digits)


for _ in range(N_PER_ENTITY // 2):
    negative(f"Order reference {luhn_failing(us.credit_card_number(card_type='visa16'))} shipped.")
for _ in range(N_PER_ENTITY // 4):
    area = random.choice(["000", "666", str(random.randint(900, 999))])
    negative(f"Ticket {area}-{random.randint(10, 99)}-{random.randint(1000, 9999)} was closed.")
for _ in range(N_PER_ENTITY // 4):
    iban = de.iban()
    check = int(iban[2:4])
    wrong = f"{iban[:2]}{(check + 1) % 100:02d}{iban[4:]}"
    negative(f"Reference {wrong} in the batch file.")
for _ in range(N_PER_ENTITY // 2):
    ran = us.date_between_dates(datetime.date(2023, 1, 1), datetime.date(2026, 1, 1))
    finished = f"{random.randint(0, 23):02d}:{random.randint(0, 59):02d}:{random.randint(0, 59):02d}"
    negative(f"The job ran on {ran.isoformat()} and finished at {finished}.")
for _ in range(N_PER_ENTITY // 4):
    negative(f"Upgraded scikit-learn from {random.randint(0, 1)}.{random.randint(0, 9)}.{random.randint(0, 9)} after review.")
for _ in range(N_PER_ENTITY // 4):
    negative(f"Invoice total {random.randint(100, 99999)}.{random.randint(10, 99)} EUR, {random.randint(2, 40)} items.")

random.shuffle(lines)
for line in lines:
    print(json.dumps(line, ensure_ascii=False))
