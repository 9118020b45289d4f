#!/usr/bin/env python3
"""The Python baseline of `ml-connector bench mapping`.

The same declarative mapping the engine runs, done the way a Python integration would do it:
the pipeline's Jinja2 templates compiled once (StrictUndefined, a template that is one
`{{ expression }}` keeps its type, as in the engine), jsonpath-ng for `for_each`, the engine's
custom filters, and the Mailchimp request the connector builds (path, normalised e-mail,
payload hash). It reads the same JSON Lines and writes one line per record:
`{"key", "method", "path", "body", "hash"}`, `{"filtered": true}` or `{"error": "..."}`.

    pip install jinja2 jsonpath-ng
    python3 jinja_mapping.py PIPELINE.json VARS.json IN.jsonl OUT.jsonl

PIPELINE.json is the pipeline file as JSON (`ml-connector bench` converts the YAML). Only the
target resources the stock BC flows use are built: member, customer, product, order.
"""

import hashlib
import json
import re
import sys
from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal

import jinja2
from jsonpath_ng.ext import parse as jsonpath


class RecordError(Exception):
    """A record that cannot be mapped (a data error, as the engine's dead letters)."""


def normalize_email(raw):
    """The engine's e-mail check: one @, a sane local part, a dotted domain."""
    email = raw.strip().lower()
    if "@" not in email:
        return None
    local, domain = email.split("@", 1)
    ok_local = local and len(local) <= 64 and not local.startswith(".") and not local.endswith(".") and ".." not in local
    labels = domain.split(".")
    ok_domain = "." in domain and all(l and not l.startswith("-") and not l.endswith("-") for l in labels)
    bad = any(c.isspace() or ord(c) < 32 or c in '()<>[]\\,;:"' for c in email) or "@" in domain
    if ok_local and ok_domain and not bad and len(email) <= 254:
        return email
    return None


def f_email(value):
    email = normalize_email(str(value))
    if email is None:
        raise RecordError(f"`{value}` is not a valid email address")
    return email


def f_subscriber_hash(value):
    return hashlib.md5(str(value).strip().lower().encode()).hexdigest()


def split_name(full):
    full = str(full).strip()
    if "," in full:
        last, first = full.split(",", 1)
        return first.strip(), last.strip()
    words = full.split()
    return (words[0] if words else ""), " ".join(words[1:])


def f_decimal(value, places=2):
    if isinstance(value, str):
        number = Decimal(value.strip())
    elif isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RecordError(f"decimal: `{value}` is not a number")
    else:
        number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    rounded = number.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    return int(rounded) if places == 0 else float(rounded)


def f_iso8601(value):
    text = str(value).strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return text + "T00:00:00Z"
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    moment = moment.astimezone(timezone.utc)
    fraction = f".{moment.microsecond:06d}".rstrip("0") if moment.microsecond else ""
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + fraction + "Z"


ENV = jinja2.Environment(
    undefined=jinja2.StrictUndefined,
    autoescape=False,
    finalize=lambda v: "" if v is None else v,
)
ENV.filters.update(
    email=f_email,
    subscriber_hash=f_subscriber_hash,
    first_name=lambda v: split_name(v)[0],
    last_name=lambda v: split_name(v)[1],
    decimal=f_decimal,
    iso8601=f_iso8601,
    md5=lambda v: hashlib.md5(str(v).encode()).hexdigest(),
    sha256=lambda v: hashlib.sha256(str(v).encode()).hexdigest(),
)

SINGLE = re.compile(r"^\{\{(.*)\}\}$", re.DOTALL)


def compile_template(text):
    """A callable rendering the template: the text itself, one typed expression, or a string."""
    if "{{" not in text and "{%" not in text:
        return lambda ctx: text
    single = SINGLE.match(text)
    if single and not any(t in single.group(1) for t in ("{{", "}}", "{%", "%}")):
        expr = ENV.compile_expression(single.group(1), undefined_to_none=False)

        def evaluate(ctx):
            value = expr(**ctx)
            if isinstance(value, jinja2.Undefined):
                raise RecordError(f"`{single.group(1).strip()}` rendered to an undefined value")
            return value

        return evaluate
    template = ENV.from_string(text)
    return lambda ctx: template.render(**ctx)


def compile_condition(text):
    expr = ENV.compile_expression(text, undefined_to_none=False)
    return lambda ctx: bool(expr(**ctx))


def compile_field(spec):
    if isinstance(spec, str):
        return compile_template(spec)
    if isinstance(spec, list):
        items = [compile_field(s) for s in spec]
        return lambda ctx: [f(ctx) for f in items]
    if isinstance(spec, dict) and "for_each" in spec:
        path = jsonpath(spec["for_each"])
        keep = compile_condition(spec["filter"]) if spec.get("filter") else None
        element = compile_object(spec["fields"]) if "fields" in spec else compile_field(spec["value"])

        def each(ctx):
            out = []
            for index, match in enumerate(path.find(ctx["record"])):
                inner = dict(ctx, item=match.value, index=index)
                if keep is None or keep(inner):
                    out.append(element(inner))
            return out

        return each
    if isinstance(spec, dict):
        return compile_object(spec)
    return lambda ctx: spec


def compile_object(fields):
    compiled = [(name, compile_field(spec)) for name, spec in fields.items()]
    return lambda ctx: {name: f(ctx) for name, f in compiled}


def build_request(resource, params, body):
    """The request the Mailchimp connector builds for the resource (path, normalisations)."""
    if resource == "member":
        email = normalize_email(body.get("email_address") or "")
        if email is None:
            raise RecordError(f"`{body.get('email_address')}` is not a valid email address")
        body["email_address"] = email
        path = f"/lists/{params['list_id']}/members/{f_subscriber_hash(email)}"
    elif resource == "customer":
        email = normalize_email(body.get("email_address") or "")
        if email is None:
            raise RecordError(f"`{body.get('email_address')}` is not a valid email address")
        body["email_address"] = email
        body.setdefault("opt_in_status", False)
        path = f"/ecommerce/stores/{params['store_id']}/customers/{body['id']}"
    elif resource == "product":
        if not body.get("variants"):
            variant = {"id": body["id"], "title": body["title"]}
            for field in ("price", "sku", "url", "inventory_quantity"):
                if field in body:
                    variant[field] = body[field]
            for field in ("price", "sku", "inventory_quantity"):
                body.pop(field, None)
            body["variants"] = [variant]
        path = f"/ecommerce/stores/{params['store_id']}/products/{body['id']}"
    elif resource == "order":
        if not body.get("lines"):
            raise RecordError("an order needs at least one line")
        currency = body.get("currency_code") or ""
        if len(currency) != 3 or not currency.isupper():
            raise RecordError(f"`currency_code` `{currency}` is not an ISO 4217 code like EUR")
        path = f"/ecommerce/stores/{params['store_id']}/orders/{body['id']}"
    else:
        raise RecordError(f"the baseline does not build resource `{resource}`")
    return {"method": "PUT", "path": path, "body": body, "options": {"resource": resource}}


def canonical(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def main():
    pipeline_file, vars_file, in_file, out_file = sys.argv[1:5]
    with open(pipeline_file) as f:
        pipeline = json.load(f)
    with open(vars_file) as f:
        variables = json.load(f)
    keep = compile_condition(pipeline["filter"]) if pipeline.get("filter") else None
    key = compile_template(pipeline["key"])
    fields = compile_object(pipeline["fields"])
    params = compile_object(pipeline["target"].get("params", {}))
    resource = pipeline["target"]["resource"]
    name = pipeline["name"]
    with open(in_file) as src, open(out_file, "w") as out:
        for line in src:
            record = json.loads(line)
            ctx = {"record": record, "vars": variables, "pipeline": name}
            try:
                if keep is not None and not keep(ctx):
                    out.write('{"filtered":true}\n')
                    continue
                request = build_request(resource, params(ctx), fields(ctx))
                entry = {
                    "key": str(key(ctx)),
                    "method": request["method"],
                    "path": request["path"],
                    "body": request["body"],
                    "hash": hashlib.sha256(canonical(request).encode()).hexdigest(),
                }
            except (RecordError, jinja2.UndefinedError, KeyError, ValueError) as e:
                entry = {"error": str(e)}
            out.write(json.dumps(entry, ensure_ascii=False))
            out.write("\n")


if __name__ == "__main__":
    main()
