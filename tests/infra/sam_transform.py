"""Prints the CloudFormation that SAM's translator makes of a template (argv[1]), as JSON, offline.

Run with the SAM CLI's interpreter (.venv-sam/bin/python): the translator lives there, not in the project venv.
Like `sam validate`, local CodeUri/DefinitionUri/ContentUri become a placeholder S3 URI, and no managed policy
name is looked up in IAM (the template names none: a lookup would fail here, which is the point).
"""

import json
import sys

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse


class NoManagedPolicies:
    def load(self) -> dict[str, str]:
        return {}


def main(path: str) -> None:
    with open(path, encoding="utf-8") as handle:
        template = yaml_parse(handle.read())
    for resource in template.get("Resources", {}).values():
        properties = resource.get("Properties") or {}
        for key in ("CodeUri", "DefinitionUri", "ContentUri"):
            if isinstance(properties.get(key), str):
                properties[key] = "s3://placeholder/key"
    print(json.dumps(transform(template, {}, NoManagedPolicies())))


if __name__ == "__main__":
    main(sys.argv[1])
