"""Validates the Prometheus Operator objects (apiVersion monitoring.coreos.com/v1) of a
multi-document YAML file against the operator's CRD schemas, unknown fields refused.

kubernetes-validate knows no custom resource, so tests/kubernetes.rs runs this beside it
with the Python of target/python-tools. The schemas come from
cloudcoil-models-prometheus-operator, pydantic models generated from the operator's CRDs:
each model's JSON schema, with every object schema that lists its properties closed
(additionalProperties: false), as `kubernetes-validate --strict` closes the Kubernetes ones.

Prints `passed kind/name` or `failed kind/name: path: message` for each such object and
skips the others; exits 1 when one failed.
"""

import sys

import jsonschema
import yaml
from cloudcoil.models.prometheus_operator import v1

API_VERSION = "monitoring.coreos.com/v1"


def close(schema):
    """Closes every object schema under `schema` that lists its properties."""
    if not isinstance(schema, dict):
        return
    if "properties" in schema and "additionalProperties" not in schema:
        schema["additionalProperties"] = False
    for name in ("properties", "$defs"):
        for child in schema.get(name, {}).values():
            close(child)
    for name in ("anyOf", "allOf", "oneOf", "prefixItems"):
        for child in schema.get(name, []):
            close(child)
    for name in ("items", "additionalProperties", "not"):
        close(schema.get(name))


def strict_schema(kind):
    schema = getattr(v1, kind).model_json_schema(by_alias=True, mode="validation")
    close(schema)
    return schema


def main(path):
    with open(path) as file:
        objects = [o for o in yaml.safe_load_all(file) if o]
    failed = False
    for obj in objects:
        if obj.get("apiVersion") != API_VERSION:
            continue
        what = f"{obj['kind'].lower()}/{obj['metadata']['name']}"
        validator = jsonschema.Draft202012Validator(strict_schema(obj["kind"]))
        errors = sorted(validator.iter_errors(obj), key=lambda e: list(e.path))
        for error in errors:
            where = ".".join(str(p) for p in error.path)
            print(f"failed {what}: {where}: {error.message}")
        if errors:
            failed = True
        else:
            print(f"passed {what}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
