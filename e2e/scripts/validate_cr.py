#!/usr/bin/env python3
"""Validate custom resource manifests against the openAPIV3Schema of their CRDs.

Usage: validate_cr.py CRD_DIR MANIFEST...

Every YAML document in each MANIFEST is matched to a CRD in CRD_DIR by apiVersion (group and
version) and kind, and validated with `jsonschema` against that version's openAPIV3Schema.
Kubernetes' `nullable: true` becomes `type: [T, "null"]` (and `null` joins an `enum`), since
JSON Schema has no `nullable`. CEL rules (`x-kubernetes-validations`) need an API server and
are not evaluated here.

Prints one line per document, `OK <file>#<n>` or `INVALID <file>#<n>: <error>`, and exits
0 when all are valid, 1 when any is invalid, 2 when the input cannot be checked at all
(missing module, unknown kind, unreadable file).
"""

import copy
import glob
import os
import sys

try:
    import jsonschema
    import yaml
except ImportError as error:  # the tools script installs both: pip install jsonschema pyyaml
    print(f"ERROR: {error}; install with: pip install jsonschema pyyaml", file=sys.stderr)
    sys.exit(2)


def convert_nullable(schema):
    """Rewrite OpenAPI `nullable: true` into JSON Schema, recursively."""
    if isinstance(schema, list):
        return [convert_nullable(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: convert_nullable(value) for key, value in schema.items()}
    if out.pop("nullable", False):
        if "type" in out:
            types = out["type"] if isinstance(out["type"], list) else [out["type"]]
            out["type"] = types + ["null"]
        if "enum" in out and None not in out["enum"]:
            out["enum"] = out["enum"] + [None]
    return out


def load_schemas(crd_dir):
    """Map (group/version, kind) to a JSON Schema for every CRD file in crd_dir."""
    schemas = {}
    for path in sorted(glob.glob(os.path.join(crd_dir, "*.yaml"))):
        with open(path, encoding="utf-8") as f:
            for crd in yaml.safe_load_all(f):
                if not crd or crd.get("kind") != "CustomResourceDefinition":
                    continue
                spec = crd["spec"]
                for version in spec["versions"]:
                    schema = copy.deepcopy(version["schema"]["openAPIV3Schema"])
                    key = (f"{spec['group']}/{version['name']}", spec["names"]["kind"])
                    schemas[key] = convert_nullable(schema)
    return schemas


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    schemas = load_schemas(argv[1])
    if not schemas:
        print(f"ERROR: no CustomResourceDefinition in {argv[1]}", file=sys.stderr)
        return 2
    any_invalid = False
    for path in argv[2:]:
        try:
            with open(path, encoding="utf-8") as f:
                documents = [d for d in yaml.safe_load_all(f) if d is not None]
        except (OSError, yaml.YAMLError) as error:
            print(f"ERROR: cannot read {path}: {error}", file=sys.stderr)
            return 2
        for index, document in enumerate(documents):
            key = (document.get("apiVersion"), document.get("kind"))
            schema = schemas.get(key)
            if schema is None:
                print(f"ERROR: {path}#{index}: no CRD for {key[0]} {key[1]}", file=sys.stderr)
                return 2
            validator_class = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
            validator = validator_class(schema)
            errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
            if errors:
                any_invalid = True
                for error in errors:
                    location = ".".join(str(p) for p in error.absolute_path) or "<root>"
                    print(f"INVALID {path}#{index}: {location}: {error.message}")
            else:
                print(f"OK {path}#{index}")
    return 1 if any_invalid else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
